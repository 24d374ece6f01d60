"""The library: thumbnails, names, kinds, λ and tags; tick several; search and filter; rename,
edit the details into the file's metadata; delete to the trash and restore."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ostaf.library.attribute_meta import read_meta
from ostaf.method.regions import AttributeKind
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.library_panel import ID_ROLE
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.trash_dialog import TrashDialog
from tests.attribute_files import write_attribute_file
from tests.desktop.conftest import Dialogs, add_attribute


def test_tick_several_each_with_its_own_lambda(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    first = add_attribute(vm, "Blue glaze", seed=1)
    second = add_attribute(vm, "Curled pose", seed=2, word="cat")
    listing = window.library.list
    assert listing.count() == 2
    assert listing.item(0).text() == "Curled pose\nappearance · cat · λ 1"  # its word shows
    assert not listing.item(0).icon().isNull()
    for index in range(2):
        listing.item(index).setCheckState(Qt.CheckState.Checked)
    assert {a.id for a in vm.library.applied} == {first, second}
    sliders = window.render_panel.sliders()
    assert len(sliders) == 2
    sliders[0].slider.setValue(40)
    sliders[1].slider.setValue(150)
    assert sorted(a.intensity for a in vm.library.applied) == [0.4, 1.5]
    low = next(a.id for a in vm.library.applied if a.intensity == 0.4)
    vm.library.selected_id = low
    keep = window.library.details.keep_lambda
    assert not keep.isHidden() and keep.text() == "Keep λ 0.40"
    keep.click()
    assert keep.isHidden()
    assert vm.library.row(low).default_lambda == 0.4  # type: ignore[union-attr]
    assert read_meta(vm.library.row(low).path).default_lambda == 0.4  # type: ignore[union-attr]
    assert " · λ 0.4" in listing.item(1).text() + listing.item(0).text()
    listing.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert len(vm.library.applied) == 1 and len(window.render_panel.sliders()) == 1


def test_details_edit_writes_name_tags_notes_and_lambda(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs
) -> None:
    attribute = add_attribute(vm, "Blue glaze")
    vm.library.selected_id = attribute
    path = vm.library.selected.path  # type: ignore[union-attr]
    dialogs.texts.append("Cobalt glaze")
    window.shortcuts.rename.trigger()
    assert read_meta(path).name == "Cobalt glaze"
    assert window.library.list.item(0).text().startswith("Cobalt glaze")

    details = window.library.details
    assert details.name.text() == "Cobalt glaze" and not details.save.isEnabled()
    details.tags.setText("Glaze, ceramic,  blue ")
    details.notes.setPlainText("from the 1920s vase")
    details.default_lambda.setValue(0.8)
    assert details.save.isEnabled() and details.revert.isEnabled()
    details.save.click()
    meta = read_meta(path)
    assert (meta.tags, meta.notes, meta.default_lambda) == (
        ["glaze", "ceramic", "blue"],
        "from the 1920s vase",
        0.8,
    )
    assert path.exists() and vm.library.selected_id == attribute  # the id (content) stays
    assert not details.save.isEnabled() and details.tags.text() == "glaze, ceramic, blue"
    assert "#glaze #ceramic #blue" in window.library.list.item(0).text()

    details.name.setText("Something else")
    details.revert.click()
    assert details.name.text() == "Cobalt glaze" and read_meta(path).name == "Cobalt glaze"
    details.tags.setText("a,b" + "x" * 60)
    details.save.click()  # a tag too long: refused with the reason, the file unchanged
    assert vm.session.error is not None and "tag" in vm.session.error.message
    assert read_meta(path).tags == ["glaze", "ceramic", "blue"]


def test_search_and_kind_filter_narrow_the_list(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    project = vm.projects.current
    assert project is not None
    for index, (name, kind) in enumerate(
        (
            ("Blue glaze", AttributeKind.APPEARANCE),
            ("Curled pose", AttributeKind.SHAPE),
            ("Ink wash", AttributeKind.STYLE),
        )
    ):
        write_attribute_file(project.attribute_path(f"{index + 1:016x}"), name=name, kind=kind)
    vm.library.refresh()
    vm.library.update(vm.library.rows[0].id, tags=["favourite"])
    listing, panel = window.library.list, window.library
    assert listing.count() == 3 and panel.summary.isHidden()

    window.shortcuts.find.trigger()
    qtbot.keyClicks(panel.search, "pose")
    assert [listing.item(i).text().split("\n")[0] for i in range(listing.count())] == [
        "Curled pose"
    ]
    assert panel.summary.text() == "1 of 3 shown" and not panel.summary.isHidden()
    assert vm.library.selected is not None and vm.library.selected.name == "Curled pose"

    panel.search.setText("#favourite")
    assert listing.count() == 1 and vm.library.visible[0].tags == ("favourite",)
    panel.search.setText("")
    panel.kind_buttons["style"].click()
    assert listing.count() == 1 and "Ink wash" in listing.item(0).text()
    panel.kind_buttons["shape"].click()  # one kind at a time
    assert not panel.kind_buttons["style"].isChecked() and "Curled pose" in listing.item(0).text()
    panel.kind_buttons["shape"].click()
    assert listing.count() == 3 and vm.library.kind_filter == ""
    panel.kind_buttons["style"].click()
    panel.search.setText("glaze")
    assert listing.isHidden() and panel.empty.text() == "No attribute matches the search."
    assert vm.library.selected is None and panel.details.isHidden()
    panel.search.clear()
    panel.kind_buttons["style"].click()
    assert listing.count() == 3 and panel.summary.isHidden()


def test_delete_to_trash_and_restore(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, qtbot: QtBot
) -> None:
    attribute = add_attribute(vm, "Blue glaze")
    vm.library.set_applied(attribute, True)
    path = vm.library.row(attribute).path  # type: ignore[union-attr]
    data = path.read_bytes()

    dialogs.confirm = False
    window.shortcuts.delete.trigger()
    assert path.exists()  # the confirmation was declined
    dialogs.confirm = True
    window.shortcuts.delete.trigger()
    assert "Delete attribute" in dialogs.asked
    assert not path.exists() and vm.library.rows == () and vm.library.applied == ()
    assert not window.library.empty.isHidden()
    (trashed,) = vm.library.trashed
    assert trashed.path.read_bytes() == data

    window.shortcuts.trash.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, TrashDialog) and dialog.list.count() == 1
    assert "Blue glaze" in dialog.list.item(0).text() and dialog.restore.isEnabled()
    dialog.restore.click()
    assert path.read_bytes() == data and vm.library.trashed == ()
    assert vm.library.selected_id == attribute and window.library.list.count() == 1
    assert dialog.list.isHidden() and not dialog.empty.isHidden()
    dialog.close()
    qtbot.waitUntil(lambda: window.library_actions.dialog is None, timeout=2000)


def test_a_file_of_wrong_types_is_skipped_by_name(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    """Metadata of the wrong types (here `created_at: 5`, which broke sorting the list) is
    named under the list; the readable attributes are listed as usual."""
    import json

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    good = add_attribute(vm, "Blue glaze", seed=1)
    bad = window_project_file(vm, "bad0000000000000")
    write_attribute_file(bad, name="Bad types", seed=2)
    with safe_open(str(bad), framework="numpy") as handle:
        meta = json.loads(handle.metadata()["ostaf"])
    meta["created_at"] = 5
    save_file(load_file(str(bad)), str(bad), metadata={"ostaf": json.dumps(meta)})
    vm.library.refresh()
    assert [row.id for row in vm.library.rows] == [good]
    assert window.library.list.count() == 1
    assert not window.library.problems.isHidden()
    assert "bad0000000000000.safetensors" in window.library.problems.text()
    assert "created_at" in window.library.problems.text()


def window_project_file(vm: MainViewModel, stem: str) -> Path:
    project = vm.projects.current
    assert project is not None
    return project.attributes_dir / f"{stem}.safetensors"


def test_trash_deletes_permanently_after_confirming(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, qtbot: QtBot
) -> None:
    first, second, third = (
        add_attribute(vm, name, seed) for seed, name in enumerate(("Blue glaze", "Ink", "Rust"))
    )
    paths = {a: vm.library.row(a).path for a in (first, second, third)}  # type: ignore[union-attr]
    for attribute in (first, second, third):
        vm.library.delete(attribute)
    trashed = {row.id: row.path for row in vm.library.trashed}
    assert len(trashed) == 3 and set(trashed) == {first, second, third}

    window.shortcuts.trash.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, TrashDialog) and dialog.list.count() == 3
    assert dialog.purge.isEnabled() and dialog.empty_all.isEnabled()
    target = str(dialog.list.currentItem().data(ID_ROLE))

    dialogs.confirm = False
    dialog.purge.click()
    assert "Delete permanently" in dialogs.asked and trashed[target].exists()
    assert dialog.list.count() == 3  # declined: nothing deleted
    dialogs.confirm = True
    dialog.purge.click()
    assert not trashed[target].exists() and dialog.list.count() == 2
    assert {row.id for row in vm.library.trashed} == {first, second, third} - {target}

    dialogs.confirm = False
    dialog.empty_all.click()
    assert "Empty trash" in dialogs.asked and dialog.list.count() == 2
    dialogs.confirm = True
    dialog.empty_all.click()
    assert vm.library.trashed == () and not any(p.exists() for p in trashed.values())
    assert not any(p.exists() for p in paths.values())
    assert dialog.list.isHidden() and not dialog.empty.isHidden()
    assert not dialog.purge.isEnabled() and not dialog.empty_all.isEnabled()
    dialog.close()
    qtbot.waitUntil(lambda: window.library_actions.dialog is None, timeout=2000)
