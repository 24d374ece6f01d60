"""One typed schema per record: an attribute file whose metadata has a wrong type is refused at
import and skipped, with its name, by every reader (the library, info, export-lora); a
project.json of wrong types is reported, never a TypeError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from ostaf.cli.main import main
from ostaf.errors import AttributeFileError, ProjectError
from ostaf.library.attribute_meta import METADATA_KEY, read_meta
from ostaf.library.projects import ProjectStore
from tests.attribute_files import write_attribute_file

BAD_VALUES = [
    ("created_at", 5),
    ("name", 12345),
    ("name", None),
    ("notes", ["a"]),
    ("tags", [1]),
    ("tuning", [1, 2]),
    ("tuning", {"resolution": "abc"}),
    ("tuning", {"steps": -3}),
    ("tuning", {"later": [1]}),
    ("default_lambda", "1"),
    ("default_lambda", True),
    ("rank", 2.0),
    ("reference", {"sha256": "0", "width": "64", "height": 64}),
    ("base_model", {"name": 1, "architecture": "a", "fingerprint": "f"}),
    ("region", {"blocks": "up_blocks"}),
    ("format_version", "1"),
]


def _bad_file(path: Path, field: str, value: object) -> Path:
    """A copy of a valid attribute file with one metadata value replaced."""
    good = write_attribute_file(path.with_name("good-" + path.name))
    from safetensors import safe_open

    with safe_open(str(good), framework="numpy") as handle:
        meta = json.loads(handle.metadata()[METADATA_KEY])
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    good.unlink()
    meta[field] = value
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    return path


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_a_wrong_type_is_refused_at_import_and_named(
    home: Path, tmp_path: Path, field: str, value: object
) -> None:
    bad = _bad_file(tmp_path / "bad.safetensors", field, value)
    with pytest.raises(AttributeFileError, match=rf"bad\.safetensors: .*{field}"):
        read_meta(bad)
    project = ProjectStore().create("Strict")
    with pytest.raises(AttributeFileError, match=r"bad\.safetensors"):
        project.import_attributes([write_attribute_file(tmp_path / "ok.safetensors"), bad])
    assert project.attributes() == []  # one bad file and nothing is imported
    project.release()


@pytest.mark.parametrize(
    ("field", "value"), [("created_at", 5), ("name", None), ("tuning", {"resolution": "abc"})]
)
def test_every_reader_skips_or_names_a_bad_file(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: object,
) -> None:
    """A bad file planted in the library: list, show, delete and the desktop's listing (the
    same scan) go on with the good ones; info and export-lora name it in one line."""
    project = ProjectStore().create("Planted")
    good = project.import_attribute(write_attribute_file(tmp_path / "g.safetensors")).entry
    bad = _bad_file(project.attributes_dir / "0123456789abcdef.safetensors", field, value)
    entries, problems = project.scan_attributes()
    assert [e.id for e in entries] == [good.id]
    assert [p.path for p in problems] == [bad]
    project.release()

    assert main(["library", "list", "--project", "Planted"]) == 0
    captured = capsys.readouterr()
    assert good.id in captured.out and "0123456789abcdef" not in captured.out
    assert f"warning: skipped {bad}" in captured.err and field in captured.err
    assert main(["library", "list", "--project", "Planted", "--json"]) == 0
    assert [row["id"] for row in json.loads(capsys.readouterr().out)] == [good.id]
    assert main(["library", "show", "--project", "Planted", good.id]) == 0
    assert "Blue glaze" in capsys.readouterr().out
    for command in (["info", str(bad)], ["export-lora", str(bad), "--out", str(tmp_path / "x")]):
        assert main(command) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: the attribute metadata")
    assert main(["library", "delete", "--project", "Planted", good.id]) == 0
    assert "moved to the trash" in capsys.readouterr().out
    assert bad.is_file()  # never touched


def test_older_and_newer_files_still_read_and_keep_their_keys(home: Path, tmp_path: Path) -> None:
    """A file with only the required keys reads; a plain value a newer version added to the
    tuning record is kept through an edit."""
    minimal = _bad_file(tmp_path / "old.safetensors", "tuning", {"caption": "a red jug"})
    project = ProjectStore().create("Versions")
    entry = project.import_attribute(minimal).entry
    project.update_attribute(entry.id, name="Renamed")
    meta = read_meta(entry.path)
    assert meta.name == "Renamed" and meta.tuning == {"caption": "a red jug"}
    project.release()


@pytest.mark.parametrize(
    "document",
    [
        {"name": 12345},
        {"name": None},
        {"name": "P", "created": 5},
        {"name": "P", "references": [{"sha256": "a", "file": 123, "original_name": "x"}]},
        {"name": "P", "references": {"a": 1}},
        {"name": "P", "schema_version": "1"},
        {"name": ""},
    ],
)
def test_a_project_json_of_wrong_types_is_reported(home: Path, document: dict[str, object]) -> None:
    store = ProjectStore()
    folder = store.root / "typed"
    folder.mkdir(parents=True)
    (folder / "project.json").write_text(json.dumps(document))
    projects, problems = store.list()
    assert projects == [] and len(problems) == 1
    assert "typed/project.json is damaged" in problems[0].message
    with pytest.raises(ProjectError, match="is damaged"):
        store.find("typed")


def _png_url(width: int, height: int) -> str:
    """A PNG data URL declaring width×height pixels (1-bit: small to build)."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_REFERENCE = {"sha256": "0" * 64, "width": 64, "height": 64, "file_name": "ref.png"}

# What no command of the app could write: each is refused by every reader, naming the field.
OUT_OF_LIMITS = [
    ("name", "n" * 121),
    ("name", "n" * 10_000),
    ("name", ""),
    ("name", "   "),
    ("name", " padded"),
    ("name", "nul\x00name"),
    ("name", "two\nlines"),
    ("name", "escape\x1b[2J"),
    ("name", "right-to-left\u202eevil"),
    ("notes", "x" * 4001),
    ("tags", ["a,b"]),
    ("tags", ["t" * 41]),
    ("tags", ["same", "same"]),
    ("tags", [f"t{i}" for i in range(51)]),
    ("tags", ["Upper"]),
    ("tags", [""]),
    ("reference", {**_REFERENCE, "sha256": "../../etc/passwd"}),
    ("reference", {**_REFERENCE, "sha256": "A" * 64}),
    ("reference", {**_REFERENCE, "thumbnail": _png_url(8000, 8000)}),
    ("reference", {**_REFERENCE, "thumbnail": "data:image/png;base64,not base64"}),
    ("reference", {**_REFERENCE, "file_name": "f" * 256}),
    ("tuning", {"crop": [-5, -5, 1e9, 1e9]}),
    ("tuning", {"crop": [-5, -5, 10, 10]}),
    ("tuning", {"crop": [0, 0, 10**9, 10**9]}),
    ("tuning", {"crop": [10, 10, 5, 20]}),
    ("tuning", {"resolution": 16_777_216}),
    ("tuning", {"family": "sd3"}),
    ("tuning", {"token": "two words"}),
    ("tuning", {"caption": "c" * 301}),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_LIMITS)
def test_what_no_command_could_write_is_refused_by_every_reader(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object
) -> None:
    bad = _bad_file(tmp_path / "bad.safetensors", field, value)
    with pytest.raises(AttributeFileError, match=rf"bad\.safetensors: .*{field}"):
        read_meta(bad)
    ProjectStore().create("Limits").release()
    assert main(["library", "import", "--project", "Limits", str(bad)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {bad}: the attribute metadata is damaged ({field}")
    assert len(line) < 400  # a 10,000-character name is not printed back
    assert ProjectStore().find("Limits").attributes() == []


def test_a_file_at_the_writers_limits_reads_and_edits(home: Path, tmp_path: Path) -> None:
    """The schema's limits are the writers': the longest name, notes and tag list any
    command writes read back, and one more is refused by the writer itself."""
    from ostaf.errors import SettingsError
    from ostaf.library.attribute_meta import check_attribute_name, normalize_tags
    from ostaf.limits import MAX_NAME, MAX_NOTES, MAX_TAG, MAX_TAGS

    project = ProjectStore().create("Edges")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    tags = [f"{i:02d}" + "t" * (MAX_TAG - 2) for i in range(MAX_TAGS)]
    project.update_attribute(entry.id, name="n" * MAX_NAME, tags=tags, notes="x" * MAX_NOTES)
    meta = read_meta(entry.path)
    assert (len(meta.name), len(meta.tags), len(meta.notes)) == (MAX_NAME, MAX_TAGS, MAX_NOTES)
    with pytest.raises(ProjectError, match=f"at most {MAX_TAGS} tags"):
        project.change_tags(entry.id, add=["one more"])
    with pytest.raises(ProjectError, match="longer than 4000"):
        project.update_attribute(entry.id, notes="x" * (MAX_NOTES + 1))
    project.release()
    for name in ("nul\x00", "bidi\u202eevil", "esc\x1b[2J", "lone\udcff"):
        with pytest.raises(SettingsError, match="control or invisible character"):
            check_attribute_name(name)
    assert check_attribute_name("  two\n lines ") == "two lines"  # whitespace is collapsed
    with pytest.raises(ProjectError, match="at most 40 visible characters"):
        normalize_tags(["t" * 41])


def test_tag_add_with_thousands_of_tags_is_refused_in_one_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = ProjectStore().create("Tags")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.release()
    many = ",".join(f"t{i}" for i in range(10_000))
    assert main(["library", "tag", "--project", "Tags", entry.id, "--add", many]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: an attribute takes at most 50 tags"
    assert read_meta(entry.path).tags == []


def test_a_default_name_drops_what_a_file_name_may_hide(home: Path) -> None:
    """A reference named with control characters (a file name may hold any but '/') gives
    a name the schema accepts, so the tuned file can be saved and read back."""
    from ostaf.library.attribute_meta import default_attribute_name
    from ostaf.method.regions import AttributeKind

    name = default_attribute_name(AttributeKind.APPEARANCE, "jug\x1b[2J\u202e\udcff.png")
    assert name == "appearance from jug [2J .png"


def test_a_crop_the_schema_refuses_is_refused_before_tuning() -> None:
    from ostaf.errors import SettingsError
    from ostaf.method.regions import AttributeKind
    from ostaf.requests import TuningSettings

    for crop in ((-5, -5, 10, 10), (0, 0, 10**9, 10**9), (10, 0, 5, 8)):
        with pytest.raises(SettingsError, match="crop"):
            TuningSettings(kind=AttributeKind.SHAPE, crop=crop).validate()
    TuningSettings(kind=AttributeKind.SHAPE, crop=(0, 0, 5000, 5000)).validate()


def test_a_lone_surrogate_is_refused_by_every_schema(home: Path, tmp_path: Path) -> None:
    """No encoder writes a lone surrogate, so a text holding one cannot be printed or saved:
    every record read through the schema refuses it, escaped (JSON) or raw."""
    from ostaf.errors import SettingsError
    from ostaf.records import RecordError, parse_record
    from ostaf.settings import load_settings

    bad = _bad_file(tmp_path / "s.safetensors", "name", "lone \ud800")
    with pytest.raises(AttributeFileError, match="not valid Unicode"):
        read_meta(bad)
    settings = tmp_path / "settings.json"
    settings.write_text('{"model_source": "\\udc80"}')
    with pytest.raises(SettingsError, match="not valid Unicode"):
        load_settings(settings)
    with pytest.raises(RecordError, match="not valid Unicode"):
        parse_record(dict[str, str], '{"a": "raw \ud800"}')
    assert parse_record(dict[str, str], '{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
