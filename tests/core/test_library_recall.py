"""Re-opening a rendered image's settings: the PNG's record back into RenderSettings, with
its attributes found by content in the project library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ostaf.errors import InputImageError
from ostaf.library.attribute_file import save_attribute
from ostaf.library.projects import ProjectStore
from ostaf.method.regions import AttributeKind
from ostaf.models.base_model import BaseModel
from ostaf.render.batch import run_batch
from ostaf.render.batch_plan import AttributeChoice, BatchRequest, plan_batch
from ostaf.render.recall import recall_image
from ostaf.requests import AppliedAttribute
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401
from tests.core.test_batch import FAST


def test_recall_finds_settings_and_library_files(
    model: BaseModel, home: Path, tmp_path: Path
) -> None:
    look = make_attribute(model, AttributeKind.APPEARANCE, 7, "Glaze")
    pose = make_attribute(model, AttributeKind.SHAPE, 8, "Pose", word="cat")
    project = ProjectStore().create("Recall")
    entries = [
        project.import_attribute(save_attribute(tmp_path / f"{a.meta.name}.safetensors", a)).entry
        for a in (look, pose)
    ]
    request = BatchRequest(
        prompts=["a blue cat"],
        seeds=[5],
        out_dir=tmp_path / "out",
        combinations=[[AttributeChoice(e.path, (0.7,)) for e in entries]],
        negative_prompt="dull",
        project=project.slug,
        **FAST,  # type: ignore[arg-type]
    )
    plan = plan_batch(request, {e.path: e.meta for e in entries})
    image = run_batch(model, plan, {e.path: a for e, a in zip(entries, (look, pose), strict=True)})
    png = image.written[0]

    others = ProjectStore().create("Elsewhere")
    recalled = recall_image(png, [others, project])
    settings = recalled.settings
    assert (settings.prompt, settings.negative_prompt, settings.seeds) == (
        "a blue cat",
        "dull",
        [5],
    )
    assert (settings.steps, settings.sampler, settings.guidance) == (2, "ddim", 1.0)
    assert (settings.width, settings.height) == (32, 32)
    assert settings.attributes == [AppliedAttribute(e.path, 0.7) for e in entries]
    assert recalled.model_fingerprint == model.fingerprint and recalled.complete
    assert recalled.warnings == []

    project.delete_attribute(entries[1].id)
    partial = recall_image(png, [project])
    assert partial.settings.attributes == [AppliedAttribute(entries[0].path, 0.7)]
    assert partial.attributes[1].trashed is not None
    assert partial.warnings == [f"'Pose' is in the trash ({partial.attributes[1].trashed}); "
                                "restore it first"]  # fmt: skip
    assert recall_image(png).warnings[0].endswith("not in any project library; import its file")
    project.release()
    others.release()


def test_recall_of_a1111_text_and_of_plain_pngs(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a castle, at night\nNegative prompt: fog\n"
        "Steps: 12, Sampler: Euler, CFG scale: 5.5, Seed: 42, Size: 64x96, Model: sd15",
    )
    other_tool = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(other_tool, pnginfo=info)
    recalled = recall_image(other_tool)
    settings = recalled.settings
    assert (settings.prompt, settings.negative_prompt) == ("a castle, at night", "fog")
    assert (settings.steps, settings.sampler, settings.guidance, settings.seeds) == (
        12,
        "euler",
        5.5,
        [42],
    )
    assert (settings.width, settings.height) == (64, 96) and not recalled.complete
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    with pytest.raises(InputImageError, match="carries no generation parameters"):
        recall_image(plain)


def _png_with_record(path: Path, record: object) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("ostaf", json.dumps(record))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


GOOD = {
    "prompt": "a star",
    "seed": 3,
    "steps": 20,
    "guidance": 5.0,
    "width": 64,
    "height": 64,
    "sampler": "ddim",
    "attributes": [{"name": "x", "kind": "shape", "intensity": 1.0, "content_hash": "ab" * 8}],
}


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": 5},
        {"seed": "12"},
        {"seed": 1.5},
        {"steps": 0},
        {"width": True},
        {"attributes": [1]},
        {"attributes": [{"intensity": "high", "content_hash": "ab" * 8}]},
        # a content hash is a file name in a library: anything but hex could leave it
        {"attributes": [{"intensity": 1.0, "content_hash": "../../../../etc/x"}]},
        {"attributes": [{"intensity": 1.0, "content_hash": "/tmp/aaaaaaaaaaaaaaa"}]},
        {"model": "sd15"},
    ],
)
def test_a_damaged_record_is_refused_in_one_line(tmp_path: Path, change: dict) -> None:
    png = _png_with_record(tmp_path / "bad.png", {**GOOD, **change})
    with pytest.raises(InputImageError, match=r"bad\.png: the OSTAF record is damaged \(\w+"):
        recall_image(png)


def test_a_good_record_from_another_version_is_read(tmp_path: Path) -> None:
    png = _png_with_record(tmp_path / "ok.png", {**GOOD, "format_version": 9, "future": [1]})
    recalled = recall_image(png)
    assert recalled.settings.prompt == "a star" and recalled.settings.seeds == [3]
    assert recalled.settings.schedule == "model"  # records without one used the model's own
