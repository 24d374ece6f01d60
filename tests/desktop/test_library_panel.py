"""The library: thumbnails, names, kinds and λ; tick several; rename, notes, delete."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from ostaf.attribute_meta import read_meta
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, add_attribute


def test_tick_several_each_with_its_own_lambda(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    first = add_attribute(vm, "Blue glaze", seed=1)
    second = add_attribute(vm, "Curled pose", seed=2)
    listing = window.library.list
    assert listing.count() == 2
    assert "appearance · λ 1" in listing.item(0).text()
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
    keep = window.library.keep_lambda
    assert not keep.isHidden() and keep.text() == "Keep λ 0.40 as default"
    keep.click()
    assert keep.isHidden()
    assert vm.library.row(low).default_lambda == 0.4  # type: ignore[union-attr]
    assert "appearance · λ 0.4" in listing.item(1).text() + listing.item(0).text()
    listing.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert len(vm.library.applied) == 1 and len(window.render_panel.sliders()) == 1


def test_rename_notes_delete(window: MainWindow, vm: MainViewModel, dialogs: Dialogs) -> None:
    attribute = add_attribute(vm, "Blue glaze")
    vm.library.selected_id = attribute
    path = vm.library.selected.path  # type: ignore[union-attr]
    dialogs.texts.append("Cobalt glaze")
    window.shortcuts.rename.trigger()
    assert read_meta(path).name == "Cobalt glaze"
    assert window.library.list.item(0).text().startswith("Cobalt glaze")

    window.library.notes.setPlainText("from the 1920s vase")
    assert window.library.save_notes.isEnabled()
    window.library.save_notes.click()
    assert read_meta(path).notes == "from the 1920s vase"
    assert not window.library.save_notes.isEnabled()

    dialogs.confirm = True
    window.shortcuts.delete.trigger()
    assert "Delete attribute" in dialogs.asked
    assert not path.exists() and vm.library.rows == ()
    assert not window.library.empty.isHidden()
