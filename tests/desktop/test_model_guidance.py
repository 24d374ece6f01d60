"""The Render panel's guidance (CFG) starts at the loaded model's own (5 for SDXL and the demo
models, 7.5 for SD 1.x / 2.x) and follows a model change, unless the user set another value."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from ostaf_desktop.backend import ModelInfo
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend

XL = ModelInfo("An SDXL model", 64, "cpu float32", ("cpu",), False, guidance=5.0)
SD15 = ModelInfo("An SD 1.5 model", 64, "cpu float32", ("cpu",), False, guidance=7.5)


def test_guidance_follows_the_model_until_the_user_sets_it(home: Path, qtbot: QtBot) -> None:
    fake = FakeBackend(info=XL)
    vm = MainViewModel(lambda: fake, UiState())
    window = MainWindow(vm)
    qtbot.addWidget(window)
    vm.start()
    try:
        qtbot.waitUntil(lambda: vm.session.model is not None, timeout=5000)
        spin = window.render_panel.guidance
        assert (vm.rendering.guidance, spin.value()) == (5.0, 5.0)
        vm.session.model_loaded(SD15)
        assert (vm.rendering.guidance, spin.value()) == (7.5, 7.5)

        spin.setValue(9.0)  # the user's choice outlives a model change
        vm.session.model_loaded(XL)
        assert (vm.rendering.guidance, spin.value()) == (9.0, 9.0)
        vm.batch.prepare()
        assert vm.batch.guidance == 9.0

        spin.setValue(5.0)  # back at the model's own: it follows the model again
        vm.session.model_loaded(SD15)
        assert vm.rendering.guidance == 7.5
    finally:
        vm.shutdown()
