"""Dialogs keep still and stay on the screen: the Batch dialog's preview has a fixed height
while its names change, and every dialog is moved (or shrunk) into the available screen area
when it opens or grows."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from ostaf.settings import Settings
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.settings import SettingsViewModel
from ostaf_desktop.widgets.batch_dialog import BatchDialog
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.screen_fit import fitted
from ostaf_desktop.widgets.settings_dialog import SettingsDialog
from tests.desktop.conftest import add_attribute


def test_batch_preview_keeps_its_height_while_the_names_change(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    vm.library.set_applied(add_attribute(vm, "Blue glaze"), True)
    window.shortcuts.batch.trigger()
    dialog = window.batch_dialog
    assert isinstance(dialog, BatchDialog)
    qtbot.waitExposed(dialog)
    heights = set()
    for template, prompts, seeds in (
        ("{index}", "a", "1"),
        ("{project}_{attributes}_{prompt}_{seed}_{lambdas}" * 3, "a\nb\nc", "1-20"),
        ("bad/name", "a", "1"),
        ("{index}", "a", "1, 2"),
    ):
        dialog.template.setText(template)
        dialog.prompts.setPlainText(prompts)
        dialog.seeds.setText(seeds)
        qtbot.wait(20)
        heights.add((dialog.height(), dialog.names.height(), dialog.names.y()))
    assert len(heights) == 1, heights
    long_names = dialog.names.toolTip().splitlines()
    assert long_names == [] or all(line for line in long_names)


def test_fitted_moves_and_shrinks_into_the_area() -> None:
    area = QRect(0, 30, 1280, 650)
    assert fitted(QRect(100, -200, 600, 500), area) == QRect(100, 30, 600, 500)
    assert fitted(QRect(1000, 600, 600, 500), area) == QRect(680, 180, 600, 500)
    assert fitted(QRect(10, 10, 700, 900), area) == QRect(10, 30, 700, 650)
    assert fitted(QRect(50, 60, 300, 200), area) == QRect(50, 60, 300, 200)


def test_a_dialog_opened_above_the_screen_is_moved_onto_it(
    window: MainWindow, qtbot: QtBot
) -> None:
    area = QGuiApplication.primaryScreen().availableGeometry()
    dialog = SettingsDialog(SettingsViewModel(Settings(), ("cpu",)), window)
    qtbot.addWidget(dialog)
    dialog.move(area.left() + 20, area.top() - 300)  # partly above the screen
    dialog.show()
    qtbot.waitUntil(lambda: area.contains(dialog.frameGeometry()), timeout=2000)

    dialog.resize(dialog.width(), area.height() + 200)  # grows past the screen's bottom
    qtbot.waitUntil(lambda: area.contains(dialog.frameGeometry()), timeout=2000)
