"""Batch export: safe names, the grid, PNG metadata, contact sheet, resume, cancel, a full
disk, and the command line."""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import ostaf.library.atomic
from ostaf.cli.main import main
from ostaf.errors import Cancelled, SettingsError, StorageError
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_file import Attribute, save_attribute
from ostaf.library.attribute_meta import AttributeMeta
from ostaf.method.regions import AttributeKind
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken, Progress
from ostaf.render.batch import expected_record, file_state, run_batch
from ostaf.render.batch_plan import (
    AttributeChoice,
    BatchRequest,
    combinations_of,
    parse_intensities,
    plan_batch,
)
from ostaf.render.naming import NameTemplate, check_names, slug
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401

# Small and quick: 2 steps of 32 px without classifier-free guidance (one U-Net pass a step).
FAST = {"steps": 2, "sampler": "ddim", "width": 32, "height": 32, "guidance": 1.0}
FAST_ARGS = ["--steps", "2", "--sampler", "ddim", "--size", "32x32", "--guidance", "1"]


@pytest.fixture(scope="module")
def attributes(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Attribute]:
    folder = tmp_path_factory.mktemp("attributes")
    look = make_attribute(demo, AttributeKind.APPEARANCE, 1, "Blue glaze", default_lambda=1.2)
    pose = make_attribute(demo, AttributeKind.SHAPE, 2, "Pose", word="cat")
    return {
        save_attribute(folder / "look.safetensors", look): look,
        save_attribute(folder / "pose.safetensors", pose): pose,
    }


def _metas(attributes: dict[Path, Attribute]) -> dict[Path, AttributeMeta]:
    return {path: a.meta for path, a in attributes.items()}


def _request(attributes: dict[Path, Attribute], out: Path, **kw: Any) -> BatchRequest:
    look = next(iter(attributes))
    values: dict[str, Any] = {
        "prompts": ["a red vase"],
        "seeds": [1, 2],
        "out_dir": out,
        "combinations": [[AttributeChoice(look)]],
        "intensities": [0.5, 1.5],
        "project": "Ceramics",
        **FAST,
    }
    values.update(kw)
    return BatchRequest(**values)


def test_names_are_safe_everywhere() -> None:
    assert slug("Été: a/b\\c *?") == "ete-a-b-c"
    long = slug("x" * 200, 48)
    assert len(long) == 48 and long != slug("x" * 199, 48)  # a hash keeps them apart
    template = NameTemplate("{attribute}_{seed}")
    assert template.text == "{attribute}_{seed}.png"
    assert template.fill({"attribute": "con", "seed": "1"}) == "con_1.png"
    assert NameTemplate("{attribute}").fill({"attribute": "CON"}) == "_con.png"
    assert NameTemplate("{attribute}").fill({"attribute": "..."}).startswith("x")
    for bad, message in [
        ("../{seed}.png", "folder separator"),
        ("a\\{seed}", "folder separator"),
        ("..{seed}", "may not contain '..'"),
        ("{seed}?.png", "Windows does not allow"),
        ("{nope}", "field {nope} is unknown"),
        ("{seed:04d}", "takes no format"),
        ("fixed.png", "has no field"),
        ("{seed", "malformed"),
    ]:
        with pytest.raises(SettingsError, match=message):
            NameTemplate(bad)
    with pytest.raises(SettingsError, match=r"same name 'A\.PNG' \(one; two\)"):
        check_names(Path("out"), [("a.png", "one"), ("A.PNG", "two")])
    with pytest.raises(SettingsError, match="longer than 60 characters"):
        check_names(Path("out"), [("b" * 80 + ".png", "x")], max_path=60)


def test_plan_expands_the_grid(attributes: dict[Path, Attribute], tmp_path: Path) -> None:
    look, pose = attributes
    choices = [AttributeChoice(look), AttributeChoice(pose, (1.0,))]
    request = _request(
        attributes,
        tmp_path,
        prompts=["a red vase", "a cat"],
        combinations=combinations_of(choices, "subsets"),
    )
    plan = plan_batch(request, _metas(attributes))
    # prompts 2 × (look at 0.5, 1.5 + pose at 1 + both: 2) × seeds 2
    assert len(plan.cells) == 2 * 5 * 2
    first = plan.cells[0]
    assert first.file_name == "ceramics_blue-glaze_a-red-vase_1_0.5.png"
    assert plan.cells[-1].file_name == "ceramics_blue-glaze+pose_a-cat_2_1.5+1.png"
    assert [c.index for c in plan.shard(1, 3)] == list(range(1, 20, 3))
    assert sum(len(plan.shard(i, 3)) for i in range(3)) == len(plan.cells)
    defaults = plan_batch(_request(attributes, tmp_path, intensities=[]), _metas(attributes))
    assert {c.variant.intensities for c in defaults.cells} == {(1.2,)}  # the file's default λ
    assert combinations_of(choices, "each") == [[choices[0]], [choices[1]]]
    assert parse_intensities("0.5, 1,1.5") == (0.5, 1.0, 1.5)
    with pytest.raises(SettingsError, match=r"must be in 0\.\.2"):
        parse_intensities("3")
    collide = _request(attributes, tmp_path, template="{project}_{seed}")
    with pytest.raises(SettingsError, match=r"same name .* add \{seed\}, \{lambda\} or \{index\}"):
        plan_batch(collide, _metas(attributes))


def test_batch_writes_pngs_sheet_and_resumes(
    model: BaseModel, attributes: dict[Path, Attribute], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    request = _request(attributes, out, contact_sheet=True, negative_prompt="blurry")
    plan = plan_batch(request, _metas(attributes))
    reports: list[Progress] = []
    outcome = run_batch(model, plan, attributes, progress=reports.append)
    names = sorted(p.name for p in outcome.written)
    assert names == sorted(c.file_name for c in plan.cells) and outcome.skipped == []
    assert outcome.sheet == out / "ceramics_contact-sheet.png"
    assert reports[-1].stage == "batch" and reports[-1].step == reports[-1].total == 8
    assert reports[-1].eta_s == 0 and "4/4" in reports[-1].message
    cell = plan.cells[3]  # seed 2 at λ 1.5
    parameters, record = read_png_metadata(out / cell.file_name)
    assert parameters is not None and record is not None
    values = parse_a1111(parameters)["values"]
    assert values["Seed"] == "2" and values["OSTAF lambda"] == "1.5"
    assert values["OSTAF attribute"] == "Blue glaze" and values["Size"] == "32x32"
    assert record["project"] == "Ceramics" and record["negative_prompt"] == "blurry"
    with Image.open(outcome.sheet) as sheet:  # rows: seeds; columns: λ 0.5, 1.5
        assert sheet.width > 2 * 32 and sheet.height > 2 * 32
    before = {c.file_name: (out / c.file_name).read_bytes() for c in plan.cells}

    again = run_batch(model, plan, attributes)
    assert again.written == [] and len(again.skipped) == 4

    torn = out / plan.cells[1].file_name
    torn.write_bytes(before[torn.name][:-40])
    assert file_state(torn, {}) == "damaged"
    repaired = run_batch(model, plan, attributes)
    assert repaired.written == [torn] and torn.read_bytes() == before[torn.name]

    other = plan_batch(_request(attributes, out, steps=3), _metas(attributes))
    with pytest.raises(SettingsError, match="rendered with other settings"):
        run_batch(model, other, attributes)
    Image.new("RGB", (8, 8)).save(out / plan.cells[0].file_name)
    with pytest.raises(SettingsError, match="was not rendered by OSTAF"):
        run_batch(model, plan, attributes)
    overwrite = plan_batch(replace(request, overwrite=True), _metas(attributes))
    assert run_batch(model, overwrite, attributes).written == [out / plan.cells[0].file_name]
    assert (out / plan.cells[0].file_name).read_bytes() == before[plan.cells[0].file_name]


def test_a_batch_without_guidance_renders_at_the_models_own_and_resumes(
    model: BaseModel, attributes: dict[Path, Attribute], tmp_path: Path
) -> None:
    """No --guidance: each image records the model's own (the demo's 5), and a second run
    finds them done; the same batch at 7.5 is another batch."""
    out = tmp_path / "out"
    plan = plan_batch(_request(attributes, out, guidance=None, seeds=[1]), _metas(attributes))
    outcome = run_batch(model, plan, attributes)
    assert len(outcome.written) == 2
    for path in outcome.written:
        _, record = read_png_metadata(path)
        assert record is not None and record["guidance"] == model.guidance == 5.0
    assert len(run_batch(model, plan, attributes).skipped) == 2
    louder = plan_batch(_request(attributes, out, guidance=7.5, seeds=[1]), _metas(attributes))
    with pytest.raises(SettingsError, match="rendered with other settings"):
        run_batch(model, louder, attributes)


def test_cancel_keeps_finished_images(
    model: BaseModel, attributes: dict[Path, Attribute], tmp_path: Path
) -> None:
    plan = plan_batch(_request(attributes, tmp_path), _metas(attributes))
    token = CancelToken()

    def stop_in_second_image(report: Progress) -> None:
        if report.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        run_batch(model, plan, attributes, progress=stop_in_second_image, cancel=token)
    assert sorted(os.listdir(tmp_path)) == [plan.cells[0].file_name]


class _FullDisk:
    """`os` as ostaf.library.atomic sees it, with a disk that fills up after `room` files."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str) -> Any:
        handle = os.fdopen(fd, mode)
        self.room -= 1
        if self.room >= 0:
            return handle

        def write(_data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = write  # type: ignore[method-assign]
        return handle


def test_full_disk_stops_with_finished_files_valid(
    model: BaseModel,
    attributes: dict[Path, Attribute],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = plan_batch(_request(attributes, tmp_path), _metas(attributes))
    monkeypatch.setattr(ostaf.library.atomic, "os", _FullDisk(room=2))
    with pytest.raises(StorageError, match="disk full while writing") as raised:
        run_batch(model, plan, attributes)
    assert "running the same batch again resumes" in str(raised.value)
    left = sorted(os.listdir(tmp_path))
    assert left == sorted(c.file_name for c in plan.cells[:2])  # no temporary leftovers
    hashes = {path: a.content_hash() for path, a in attributes.items()}
    for cell in plan.cells[:2]:
        expected = expected_record(cell, plan, model, hashes)
        assert file_state(tmp_path / cell.file_name, expected) == "complete"

    # the same on the command line: exit 2 and one line
    monkeypatch.setattr(ostaf.library.atomic, "os", _FullDisk(room=0))
    monkeypatch.setattr("ostaf.service.load_base_model", lambda *a, **k: model)
    look = next(iter(attributes))
    code = main(
        ["batch", "--prompt", "a red vase", "--attribute", f"{look}:1", "--seeds", "4",
         "--out", str(tmp_path / "cli"), *FAST_ARGS]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: disk full while writing")
    assert not (tmp_path / "cli").exists() or os.listdir(tmp_path / "cli") == []


def test_batch_command(
    model: BaseModel,
    attributes: dict[Path, Attribute],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ostaf.library.projects import ProjectStore

    monkeypatch.setattr("ostaf.service.load_base_model", lambda *a, **k: model)
    project = ProjectStore().create("Studio")
    look = project.import_attribute(next(iter(attributes))).entry
    project.release()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# variations\na red vase\n\n", encoding="utf-8")
    args = ["batch", "--prompts", str(prompts), "--project", "Studio", "--attribute",
            "Blue glaze:0.5", "--count", "2", "--contact-sheet", *FAST_ARGS,
            "--template", "{index}_{attribute}_{seed}"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    written = [Path(line) for line in captured.out.split()]
    assert [p.name for p in written] == [
        "0000_blue-glaze_0.png",
        "0001_blue-glaze_1.png",
        "studio_contact-sheet.png",
    ]
    assert all(p.parent == project.exports_dir for p in written)
    assert "2 rendered, 0 already complete (batch of 2)" in captured.err
    assert main(args) == 0
    assert "0 rendered, 2 already complete" in capsys.readouterr().err
    assert look.path.is_file()
    code = main([*args[:-1], "{seed}/../x"])
    assert code == 2 and "folder separator" in capsys.readouterr().err


def _planted(path: Path, record: str, torn: bool = False) -> bytes:
    """A PNG at `path` whose `ostaf` chunk holds `record` (raw text), as another tool or a
    crafted file may write it."""
    import io

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red vase\nSteps: 2, Seed: 1")
    info.add_itxt("ostaf", record)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()[:-40] if torn else buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(
    "record",
    ['{"attributes": 5}', "null", '["a", "list"]', '{"prompt": "\\ud800 x", "seed": 1}', "{"],
)
def test_a_png_without_a_record_of_ours_is_never_replaced(
    model: BaseModel, attributes: dict[Path, Attribute], tmp_path: Path, record: str
) -> None:
    """A mistyped record crashed the resume check (`{"attributes": 5}`, `null`); a JSON list
    was judged "damaged" and replaced without --overwrite. Only a file whose record fits the
    schema is this app's: anything else is refused unless --overwrite, whole or torn."""
    plan = plan_batch(_request(attributes, tmp_path), _metas(attributes))
    target = tmp_path / plan.cells[0].file_name
    for torn in (False, True):
        planted = _planted(target, record, torn)
        assert file_state(target, {}) == "foreign"
        with pytest.raises(SettingsError, match="was not rendered by OSTAF"):
            run_batch(model, plan, attributes)
        assert target.read_bytes() == planted
    replace_all = plan_batch(_request(attributes, tmp_path, overwrite=True), _metas(attributes))
    assert target in run_batch(model, replace_all, attributes).written
    assert file_state(target, expected_record_of(plan, model, attributes, 0)) == "complete"


def expected_record_of(
    plan: Any, model: BaseModel, attributes: dict[Path, Attribute], index: int
) -> dict[str, Any]:
    hashes = {path: a.content_hash() for path, a in attributes.items()}
    return expected_record(plan.cells[index], plan, model, hashes)
