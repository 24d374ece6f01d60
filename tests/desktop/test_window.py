"""The window as a whole: the demo-model note, remembered layout, shortcuts and the
screenshot helper."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from ostaf_desktop.screenshot import save_screenshot
from ostaf_desktop.ui_state import load_ui_state
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow


def test_demo_hint_can_be_dismissed_for_good(window: MainWindow, vm: MainViewModel) -> None:
    assert not window.hint.isHidden()
    window.hint.dismiss.click()
    assert window.hint.isHidden()
    assert load_ui_state().demo_hint_dismissed


def test_layout_is_remembered(window: MainWindow, vm: MainViewModel, qtbot: QtBot) -> None:
    window.resize(780, 560)  # inside the offscreen platform's 800×600 screen
    qtbot.wait(50)
    window.columns.setSizes([200, 260, 150, 150])
    sizes = window.columns.sizes()
    window.close()
    assert vm.session.ui.splitters["columns"] and vm.session.ui.geometry
    other = MainWindow(vm)
    qtbot.addWidget(other)
    other.restore_layout()
    other.show()
    qtbot.waitExposed(other)
    assert other.size() == window.size()
    assert all(abs(a - b) <= 10 for a, b in zip(other.columns.sizes(), sizes, strict=True))


def test_shortcuts_exist_for_the_common_actions(window: MainWindow) -> None:
    keys = {
        action.text().replace("&", ""): action.shortcut().toString() for action in window.actions()
    }
    assert keys["Tune"] == "Ctrl+Return" and keys["Render"] == "Ctrl+R"
    assert keys["Cancel tuning"] == "Esc" and keys["Open reference image…"] == "Ctrl+O"
    assert keys["New project…"] == "Ctrl+N" and keys["Random seed"] == "Ctrl+D"
    assert keys["Batch export…"] == "Ctrl+B" and keys["Open image settings…"] == "Ctrl+Shift+O"
    assert keys["Import attribute files…"] == "Ctrl+I" and keys["Export as LoRA…"] == "Ctrl+Shift+E"
    assert keys["Export attribute file…"] == "Ctrl+E" and keys["Trash…"] == "Ctrl+Shift+T"
    assert keys["Find in the library"] == "Ctrl+F" and keys["Use the selected result's settings"]
    shortcuts = [k for k in keys.values() if k]
    assert len(shortcuts) == len(set(shortcuts)), "two actions share a shortcut"


def test_screenshot_is_the_window(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    assert save_screenshot(window, path)
    image = QImage(str(path))
    assert (image.width(), image.height()) == (window.width(), window.height())
