"""The project browser: first start, create, rename, delete with confirmation, and the last
project reopening on the next start."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.projects import FIRST_PROJECT
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, FakeBackend, add_attribute


def test_first_start_creates_a_project_and_loads_the_model(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend
) -> None:
    assert vm.projects.current is not None and vm.projects.current.name == FIRST_PROJECT
    assert [c.kind for c in fake.calls] == ["load"]
    assert fake.calls[0].request.source == "demo"
    assert window.model_state.text() == "Fake model · cpu float32"
    assert window.projects.list.count() == 1
    assert window.projects.list.item(0).text().startswith(f"{FIRST_PROJECT}\n0 attributes · ")
    assert not window.hint.isHidden()  # the demo-model note


def test_create_rename_delete(window: MainWindow, vm: MainViewModel, dialogs: Dialogs) -> None:
    dialogs.texts.append("Ceramics")
    window.shortcuts.new_project.trigger()
    assert vm.projects.current is not None and vm.projects.current.name == "Ceramics"
    assert window.windowTitle() == "Ceramics — OSTAF"
    add_attribute(vm)
    vm.projects.refresh()
    names = [window.projects.list.item(i).text() for i in range(window.projects.list.count())]
    assert any(n.startswith("Ceramics\n1 attribute ·") for n in names)

    dialogs.texts.append("Glazes")
    window.projects.rename_project()
    assert vm.projects.current.name == "Glazes" and window.windowTitle() == "Glazes — OSTAF"

    dialogs.confirm = False
    window.projects.delete_project()
    assert "Delete project" in dialogs.asked
    assert vm.projects.current is not None and vm.projects.current.name == "Glazes"

    dialogs.confirm = True
    window.projects.delete_project()
    assert vm.projects.current is None
    assert [r.name for r in vm.projects.rows] == [FIRST_PROJECT]
    assert any((vm.projects.store.root / ".trash").iterdir())
    window.projects.list.itemActivated.emit(window.projects.list.item(0))
    assert vm.projects.current is not None and vm.projects.current.name == FIRST_PROJECT


def test_the_last_project_reopens(home: Path, fake: FakeBackend, qtbot: QtBot) -> None:
    first = MainViewModel(lambda: fake, UiState())
    first.start()
    first.projects.create("Second")
    first.shutdown()
    again = MainViewModel(lambda: fake, UiState())
    again.start()
    try:
        assert again.projects.current is not None and again.projects.current.name == "Second"
    finally:
        again.shutdown()
