"""Until the base model has loaded, its size is not known: the window says nothing that
depends on it (no "Native 512×512", no "Small: the model sees 512×512"), and says the real
size once the model is in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ostaf_desktop.backend import ModelInfo
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, reference_image


@pytest.fixture
def loading(home: Path, qtbot: QtBot) -> Iterator[tuple[MainViewModel, MainWindow, FakeBackend]]:
    """The window while the model is still loading (released with `fake.load_gate.set()`)."""
    fake = FakeBackend(info=ModelInfo("Fake", 64, "cpu float32", ("cpu",), True))
    fake.load_gate.clear()
    vm = MainViewModel(lambda: fake, UiState())
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.show()
    vm.start()
    yield vm, window, fake
    fake.load_gate.set()
    vm.shutdown()


def size_texts(window: MainWindow) -> list[str]:
    combo = window.render_panel.size_combo
    return [combo.itemText(i) for i in range(combo.count())]


def test_nothing_size_specific_is_said_before_the_model_loads(
    loading: tuple[MainViewModel, MainWindow, FakeBackend], qtbot: QtBot, tmp_path: Path
) -> None:
    vm, window, fake = loading
    assert vm.reference.open_image(reference_image(tmp_path, size=96, name="small.png"))
    assert vm.session.model is None
    assert size_texts(window) == ["Native"]
    assert vm.reference.notes == ()  # 96 px is small for a 512 px model, not for this one
    assert vm.batch.size_options == (("Native", "native"),)
    fake.load_gate.set()
    qtbot.waitUntil(lambda: vm.session.model is not None, timeout=5000)
    assert size_texts(window)[0] == "Native 64×64"
    assert vm.reference.notes == ()


def test_the_small_picture_note_comes_with_the_models_size(
    home: Path, qtbot: QtBot, tmp_path: Path
) -> None:
    fake = FakeBackend(info=ModelInfo("SD 1.5", 512, "cpu float32", ("cpu",), False))
    fake.load_gate.clear()
    vm = MainViewModel(lambda: fake, UiState())
    vm.start()
    try:
        assert vm.reference.open_image(reference_image(tmp_path, size=96))
        assert vm.reference.notes == ()
        fake.load_gate.set()
        qtbot.waitUntil(lambda: vm.session.model is not None, timeout=5000)
        assert vm.reference.notes == (
            "Small: the model sees 512×512, so 96 pixels are upscaled and details may blur",
        )
        assert vm.rendering.size_options[0] == ("Native 512×512", "native")
    finally:
        vm.shutdown()
