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
