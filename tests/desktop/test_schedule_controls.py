"""The Schedule type beside the sampler (Render panel and Batch dialog): named as in
A1111/Forge, off for DDIM, sent with every render and brought back with an image's settings."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.interop.pngmeta import write_png
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.batch_dialog import BatchDialog
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs


def test_render_panel_schedule(window: MainWindow, vm: MainViewModel) -> None:
    panel = window.render_panel
    names = [panel.schedule.itemText(i) for i in range(panel.schedule.count())]
    assert names == ["Karras", "Simple", "Model's own"]
    assert panel.schedule.currentData() == "karras" and panel.schedule.isEnabled()

    panel.schedule.setCurrentIndex(panel.schedule.findData("simple"))
    assert vm.rendering.schedule == "simple"
    vm.rendering.prompt = "a red circle"
    assert vm.rendering._settings(4, [1]).schedule == "simple"  # what a render sends

    panel.sampler.setCurrentIndex(panel.sampler.findData("ddim"))
    assert not panel.schedule.isEnabled()  # DDIM has no schedule, in A1111 either
    panel.sampler.setCurrentIndex(panel.sampler.findData("euler"))
    assert panel.schedule.isEnabled()


def test_image_settings_bring_the_schedule_back(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    record = {
        "prompt": "a red circle", "seed": 4, "steps": 12, "guidance": 5.0, "sampler": "euler",
        "schedule": "simple", "width": 64, "height": 64, "attributes": [],
    }  # fmt: skip
    png = write_png(tmp_path / "r.png", Image.new("RGB", (64, 64)), "a red circle", record)
    dialogs.files.append(str(png))
    window.shortcuts.open_settings.trigger()
    assert window.render_panel.schedule.currentData() == "simple"

    older = {k: v for k, v in record.items() if k != "schedule"}  # made before schedules
    dialogs.files.append(str(write_png(tmp_path / "o.png", Image.new("RGB", (64, 64)), "x", older)))
    window.shortcuts.open_settings.trigger()
    assert window.render_panel.schedule.currentData() == "model"


def test_batch_dialog_takes_and_sends_the_schedule(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    vm.rendering.schedule = "simple"
    window.shortcuts.batch.trigger()
    dialog = window.findChild(BatchDialog)
    assert isinstance(dialog, BatchDialog)
    assert dialog.schedule.currentData() == "simple"
    dialog.schedule.setCurrentIndex(dialog.schedule.findData("karras"))
    assert vm.batch.schedule == "karras"
