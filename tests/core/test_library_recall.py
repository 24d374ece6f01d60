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


def _a1111_png(path: Path, pairs: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"a castle\n{pairs}")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize(
    ("pairs", "field", "reset"),
    [
        ("Steps: 12, Seed: -5", "seeds", [0]),
        ("Steps: 99999999999, Seed: 1", "steps", 25),
        ("Steps: 12, Seed: 1, Size: 0x0", "width", None),
        ("Steps: 12, Seed: 1, Size: 64x0", "width", None),  # a size is reset as a whole
        ("Steps: 12, Seed: 1, CFG scale: 900", "guidance", None),
    ],
)
def test_a1111_values_the_renderer_refuses_are_reset_and_named(
    tmp_path: Path, pairs: str, field: str, reset: object
) -> None:
    """Open image settings gave back values that RenderSettings.validate() then refused."""
    recalled = recall_image(_a1111_png(tmp_path / "x.png", pairs))
    recalled.settings.validate()
    assert getattr(recalled.settings, field) == reset
    if field == "width":
        assert recalled.settings.height is None
    (note,) = recalled.resets
    first = note.split()[0]  # the field it names: "seed -5 must be …"
    assert (field.startswith(first) or first == "height") and "reset to" in note
    assert "\n" not in note


def test_record_values_the_renderer_refuses_are_reset_and_named(home: Path, tmp_path: Path) -> None:
    from ostaf.render.recall import Recall

    project = ProjectStore().create("Recall limits")
    from tests.attribute_files import write_attribute_file

    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    record = {
        **GOOD,
        "sampler": "evil\x1b[2J",
        "schedule": "exponential",
        "attributes": [{"name": "Glaze", "intensity": 1e300, "content_hash": entry.id}],
    }
    recalled: Recall = recall_image(_png_with_record(tmp_path / "r.png", record), [project])
    project.release()
    recalled.settings.validate()
    assert (recalled.settings.sampler, recalled.settings.schedule) == ("dpmpp2m", "karras")
    assert [a.intensity for a in recalled.settings.attributes] == [1.0]
    assert recalled.attributes[0].intensity == 1.0
    assert len(recalled.resets) == 3
    assert "sampler 'evil\\x1b[2J' is unknown" in recalled.resets[0]
    assert "intensity 1e+300" in recalled.resets[2] and "'Glaze'" in recalled.resets[2]
    assert all("reset to" in note for note in recalled.resets)


def test_a_png_whose_record_is_not_ours_falls_back_to_its_parameters(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a castle\nSteps: 12, Seed: 4")
    info.add_itxt("ostaf", '["a", "list"]')
    Image.new("RGB", (8, 8)).save(tmp_path / "l.png", pnginfo=info)
    recalled = recall_image(tmp_path / "l.png")
    assert recalled.settings.seeds == [4] and not recalled.complete
    assert recalled.warnings[0].startswith("l.png: the OSTAF record is damaged (")
