"""The attribute library: import (validated, deduplicated by content), export, edit metadata,
search, trash and restore, thumbnails — in the core and on the command line."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ostaf.cli.main import main
from ostaf.errors import AttributeFileError, ProjectError, ProjectLockedError, StorageError
from ostaf.library.attribute_file import Attribute, load_attribute, save_attribute
from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import (
    Project,
    ProjectStore,
    filter_attributes,
    normalize_tags,
    thumbnail_png,
)
from ostaf.method.regions import AttributeKind
from ostaf.models.base_model import BaseModel
from tests.core.attribute_factory import make_attribute


@pytest.fixture(scope="module")
def look(demo: BaseModel) -> Attribute:
    return make_attribute(demo, AttributeKind.APPEARANCE, seed=1, name="Blue glaze")


@pytest.fixture(scope="module")
def pose(demo: BaseModel) -> Attribute:
    return make_attribute(demo, AttributeKind.SHAPE, seed=2, name="Leaping cat")


@pytest.fixture
def files(tmp_path: Path, look: Attribute, pose: Attribute) -> dict[str, Path]:
    return {
        "look": save_attribute(tmp_path / "look.safetensors", look),
        "pose": save_attribute(tmp_path / "pose.safetensors", pose),
    }


def _snapshot(project: Project) -> dict[str, bytes]:
    return {
        str(p.relative_to(project.attributes_dir)): p.read_bytes()
        for p in project.attributes_dir.rglob("*")
        if p.is_file()
    }


def test_import_dedupes_by_content_and_lists(
    home: Path, files: dict[str, Path], look: Attribute, tmp_path: Path
) -> None:
    project = ProjectStore().create("Ceramics")
    first = project.import_attributes([files["look"], files["pose"]])
    assert [o.duplicate for o in first] == [False, False]
    assert first[0].entry.path == project.attribute_path(look.content_hash())
    assert first[0].entry.path.read_bytes() == files["look"].read_bytes()  # canonical bytes
    # the same factors under another name are still the same attribute
    renamed = Attribute(replace(look.meta, name="Another name"), look.factors)
    copy = save_attribute(tmp_path / "copy.safetensors", renamed)
    again = project.import_attribute(copy)
    assert again.duplicate and again.entry.meta.name == "Blue glaze"  # nothing overwritten
    assert len(project.attributes()) == 2
    project.release()


@pytest.mark.parametrize(
    "kind", ["junk", "truncated", "foreign", "lora", "pickle", "missing", "renamed-pickle"]
)
def test_bad_files_are_refused_and_change_nothing(
    home: Path, files: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    project = ProjectStore().create("Strict")
    project.import_attribute(files["pose"])
    before = _snapshot(project)
    marker = tmp_path / "pickle-ran"
    bad = tmp_path / "bad.safetensors"
    expected = {
        "junk": "not a readable .safetensors file",
        "truncated": "not a readable .safetensors file",
        "foreign": "not an OSTAF attribute",
        "lora": "this is a LoRA",
        "pickle": "a pickle file can run code",
        "missing": "no such attribute file",
        "renamed-pickle": "not a readable .safetensors file",
    }[kind]
    if kind == "junk":
        bad.write_bytes(b"\x00" * 64)
    elif kind == "truncated":
        data = files["look"].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        save_file({"conv.weight": torch.zeros(2, 2)}, str(bad), metadata={"format": "pt"})
    elif kind == "lora":
        save_file(
            {
                "lora_unet_x.lora_down.weight": torch.zeros(1, 2),
                "lora_unet_x.alpha": torch.ones(()),
            },
            str(bad),
        )
    else:
        payload = pickle.dumps(_Trap(marker))
        if kind == "pickle":
            bad = tmp_path / "model.ckpt"
        bad.write_bytes(payload)
    if kind == "missing":
        bad = tmp_path / "nowhere.safetensors"
    # one good file with the bad one: all or nothing
    with pytest.raises(AttributeFileError, match=expected) as raised:
        project.import_attributes([files["look"], bad])
    assert bad.name in str(raised.value)
    assert _snapshot(project) == before
    assert not marker.exists()
    project.release()


class _Trap:
    """Unpickling this writes a file: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "ran"))  # type: ignore[return-value]


def test_edit_metadata_keeps_the_id_and_is_atomic(
    home: Path, files: dict[str, Path], look: Attribute
) -> None:
    project = ProjectStore().create("Edits")
    entry = project.import_attribute(files["look"]).entry
    edited = project.update_attribute(
        entry.id[:6],
        name="  Cobalt   glaze ",
        tags=["Glaze", "blue", "glaze", " "],
        notes="kiln 3",
        default_lambda=0.7,
    )
    assert edited.path == entry.path and edited.id == entry.id
    meta = read_meta(entry.path)
    assert (meta.name, meta.tags, meta.notes, meta.default_lambda) == (
        "Cobalt glaze",
        ["glaze", "blue"],
        "kiln 3",
        0.7,
    )
    assert load_attribute(entry.path).content_hash() == look.content_hash()
    before = entry.path.read_bytes()
    with pytest.raises(ProjectError, match=r"outside 0\.\.2"):
        project.update_attribute(entry.id, default_lambda=3.0)
    with pytest.raises(ProjectError, match="cannot be empty"):
        project.update_attribute(entry.id, name="   ")
    with pytest.raises(ProjectError, match="without commas"):
        normalize_tags(["a,b"])
    assert entry.path.read_bytes() == before
    assert [p.name for p in project.attributes_dir.iterdir() if p.is_file()] == [entry.path.name]
    project.release()


def test_search_and_filter(home: Path, files: dict[str, Path]) -> None:
    project = ProjectStore().create("Search")
    look, pose = (o.entry for o in project.import_attributes([files["look"], files["pose"]]))
    project.update_attribute(look.id, tags=["glaze", "blue"], notes="matte finish")
    entries = project.attributes()

    def names(**kwargs: object) -> list[str]:
        return sorted(e.meta.name for e in filter_attributes(entries, **kwargs))  # type: ignore[arg-type]

    assert names() == ["Blue glaze", "Leaping cat"]
    assert names(text="MATTE") == ["Blue glaze"]
    assert names(text="cat") == ["Leaping cat"]
    assert names(tags=["glaze"]) == ["Blue glaze"]
    assert names(tags=["glaze", "red"]) == []
    assert names(kind="shape") == ["Leaping cat"]
    assert project.find_attribute("leaping CAT").id == pose.id
    with pytest.raises(ProjectError, match="no attribute 'nothing'"):
        project.find_attribute("nothing")
    project.release()


def test_trash_and_restore(home: Path, files: dict[str, Path]) -> None:
    project = ProjectStore().create("Trash")
    entry = project.import_attribute(files["look"]).entry
    trashed = project.delete_attribute("Blue glaze")
    assert trashed.parent == project.trash_dir and trashed.is_file()
    assert project.attributes() == [] and project.scan_attributes()[1] == []
    assert [e.id for e in project.trashed_attributes()] == [entry.id]
    restored = project.restore_attribute(entry.id)
    assert not restored.already_present and restored.entry.path == entry.path
    assert [e.id for e in project.attributes()] == [entry.id] and not trashed.exists()
    # the same attribute deleted, imported again and renamed: restoring keeps the live one
    project.delete_attribute(entry.id)
    project.import_attribute(files["look"])
    project.update_attribute(entry.id, name="Renamed live copy")
    outcome = project.restore_attribute(entry.id)
    assert outcome.already_present and outcome.entry.meta.name == "Renamed live copy"
    assert trashed.is_file()  # the trashed copy stays where it was
    with pytest.raises(ProjectError, match="no attribute 'zzzz' in the trash"):
        project.restore_attribute("zzzz")
    project.release()


def test_export_and_thumbnail(home: Path, files: dict[str, Path], tmp_path: Path) -> None:
    project = ProjectStore().create("Share")
    entry = project.import_attribute(files["pose"]).entry
    out = tmp_path / "shared"
    out.mkdir()
    exported = project.export_attribute(entry.id, out)
    assert exported == out / f"leaping-cat-{entry.id[:8]}.safetensors"
    assert exported.read_bytes() == entry.path.read_bytes()
    assert project.export_attribute(entry.id, out) == exported  # same bytes: fine
    other = out / "other.safetensors"
    other.write_bytes(b"keep me")
    with pytest.raises(ProjectError, match="already exists"):
        project.export_attribute(entry.id, other)
    assert other.read_bytes() == b"keep me"
    for long_name in ("x" * 300 + ".safetensors", "x" * 300):  # a file, or a folder to make
        with pytest.raises(StorageError, match="the file name is too long") as caught:
            project.export_attribute(entry.id, out / long_name)
        assert "\n" not in str(caught.value)
    png = thumbnail_png(entry.meta)
    assert png is not None
    thumb = tmp_path / "thumb.png"
    thumb.write_bytes(png)
    with Image.open(thumb) as img:
        assert img.format == "PNG" and max(img.size) == 96
    project.release()


def test_library_command(
    home: Path, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("library", "import", "--project", "Cli", str(files["look"]))
    assert code == 2 and "no project named 'Cli'" in err and out == ""
    code, out, _ = run(
        "library", "import", "--project", "Cli", "--create", str(files["look"]), str(files["pose"])
    )
    assert code == 0 and out.count("imported: ") == 2
    ids = {e.meta.name: e.id for e in ProjectStore().find("Cli").attributes()}
    code, out, _ = run("library", "import", "--project", "Cli", str(files["look"]))
    assert code == 0 and out.startswith("already in the library: ")
    assert run("library", "rename", "--project", "Cli", ids["Blue glaze"], "Cobalt")[0] == 0
    assert run("library", "tag", "--project", "Cli", "Cobalt", "--add", "glaze,blue")[0] == 0
    assert run("library", "tag", "--project", "Cli", "Cobalt", "--remove", "blue")[0] == 0
    code, out, _ = run("library", "edit", "--project", "Cli", "Cobalt", "--lambda", "1.5")
    assert code == 0 and "λ 1.5" in out and "[glaze]" in out
    code, out, _ = run("library", "list", "--project", "Cli", "--tag", "glaze")
    assert code == 0 and out.splitlines() == [
        f"{ids['Blue glaze']}  appearance  sks     λ 1.5   Cobalt  [glaze]"
    ]
    code, out, _ = run(
        "library", "show", "--project", "Cli", "cobalt", "--thumbnail", str(tmp_path / "t.png")
    )
    assert code == 0 and "default λ:     1.5" in out and (tmp_path / "t.png").is_file()
    code, out, _ = run("library", "export", "--project", "Cli", "Cobalt", "--out", str(tmp_path))
    assert code == 0 and Path(out.strip()).is_file()
    assert run("library", "delete", "--project", "Cli", "Cobalt")[0] == 0
    code, out, _ = run("library", "list", "--project", "Cli", "--json")
    assert code == 0 and '"Leaping cat"' in out and "Cobalt" not in out
    code, out, _ = run("library", "list", "--project", "Cli", "--trash")
    assert "Cobalt" in out
    code, out, _ = run("library", "restore", "--project", "Cli", "Cobalt")
    assert code == 0 and out.startswith("restored: ")
    ProjectStore().create("Other").release()
    code, out, _ = run(
        "library", "import", "--project", "Other", "--from-project", "Cli", "Leaping cat"
    )
    assert code == 0 and "imported: " in out
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    code, out, err = run("library", "import", "--project", "Other", str(bad))
    assert code == 2 and err.count("\n") == 1 and "bad.safetensors" in err
    holder = ProjectStore().find("Other")
    holder.acquire()
    code, _, err = run("library", "rename", "--project", "Other", "Leaping cat", "x")
    assert code == 2 and "open in another OSTAF window or command" in err
    holder.release()


def test_purge_and_empty_trash_delete_for_good_under_the_lock(
    home: Path, files: dict[str, Path]
) -> None:
    project = ProjectStore().create("Purge")
    look = project.import_attribute(files["look"]).entry
    pose = project.import_attribute(files["pose"]).entry
    project.delete_attribute(look.id)
    project.delete_attribute(pose.id)
    damaged = project.trash_dir / "0123456789abcdef.safetensors"
    damaged.write_bytes(b"not a safetensors file")  # not listed, but it is in the trash
    project.release()

    other = Project(project.folder)  # another writer: the edits wait for the lock
    other.acquire()
    with pytest.raises(ProjectLockedError):
        project.purge_attribute(look.id)
    with pytest.raises(ProjectLockedError):
        project.empty_trash()
    assert len(list(project.trash_dir.iterdir())) == 3
    other.release()

    purged = project.purge_attribute("Blue glaze")
    assert purged.id == look.id and not purged.path.exists()
    assert [e.id for e in project.trashed_attributes()] == [pose.id]
    with pytest.raises(ProjectError, match="no attribute 'Blue glaze' in the trash"):
        project.purge_attribute("Blue glaze")
    assert project.attributes() == []  # the library itself is not touched

    removed = project.empty_trash()
    assert sorted(p.name for p in removed) == sorted([pose.path.name, damaged.name])
    assert list(project.trash_dir.iterdir()) == [] and project.trashed_attributes() == []
    assert project.empty_trash() == []
    assert not project.is_locked  # an edit lets go of a lock it did not hold


def test_purge_leaves_the_library_copy_alone(home: Path, files: dict[str, Path]) -> None:
    project = ProjectStore().create("Both")
    entry = project.import_attribute(files["look"]).entry
    project.delete_attribute(entry.id)
    project.import_attribute(files["look"])  # the same attribute, back in the library
    project.purge_attribute(entry.id)
    assert [e.id for e in project.attributes()] == [entry.id] and entry.path.is_file()
    project.release()


def test_purge_and_empty_trash_commands(
    home: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert (
        run("library", "import", "--project", "Bin", "--create", *map(str, files.values()))[0] == 0
    )
    ids = {e.meta.name: e.id for e in ProjectStore().find("Bin").attributes()}
    assert run("library", "delete", "--project", "Bin", *ids.values())[0] == 0
    code, out, err = run("library", "purge", "--project", "Bin", "Blue glaze")
    assert code == 0 and out.startswith("deleted for good: ") and "Blue glaze" in out
    code, out, err = run("library", "purge", "--project", "Bin", "Blue glaze")
    assert code == 2 and out == "" and "no attribute 'Blue glaze' in the trash" in err
    assert "Traceback" not in err
    code, out, _ = run("library", "list", "--project", "Bin", "--trash")
    assert code == 0 and len(out.splitlines()) == len(ids) - 1
    code, out, _ = run("library", "empty-trash", "--project", "Bin")
    assert code == 0 and f"deleted {len(ids) - 1} attribute file(s)" in out
    code, out, _ = run("library", "list", "--project", "Bin", "--trash")
    assert code == 0 and out.strip() == ""
