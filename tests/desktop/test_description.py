"""The Learn panel's Description: it follows the picture and the kind until edited for this
picture (a new picture or a resume starts afresh), a button puts the suggestion back, and on
the demo model a picture from outside its world is described with the world's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.method.regions import AttributeKind, suggested_caption
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf_desktop.interrupted_run import checkpoint_path, keep_reference
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, reference_image, save_fake_state

SAMPLE_SHAPE = "an orange striped {token}, flat style, on a white background"


def noise_picture(folder: Path) -> Path:
    """A picture the demo world's oracle cannot read."""
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    return folder / "noise.png"


def test_an_edit_is_kept_for_its_picture_and_a_new_picture_gets_its_own(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    picker = window.tuning.picker
    assert vm.reference.open_sample()
    assert not picker.restore_caption.isEnabled()  # nothing to put back yet
    picker.caption.setText("my own words about {token}")
    assert picker.restore_caption.isEnabled()
    picker.cards[AttributeKind.STYLE].radio.click()  # edited for this picture: kept
    assert vm.tuning.caption == "my own words about {token}"
    assert vm.reference.open_image(reference_image(tmp_path))  # a red square on white
    picker.cards[AttributeKind.SHAPE].radio.click()
    assert vm.tuning.caption == "a red plain {token}, flat style, on a white background"
    assert not picker.restore_caption.isEnabled()


def test_the_restore_button_puts_the_suggestion_back(window: MainWindow, vm: MainViewModel) -> None:
    picker = window.tuning.picker
    assert vm.reference.open_sample()
    picker.cards[AttributeKind.SHAPE].radio.click()
    picker.caption.setText("a star of {token}")
    picker.restore_caption.click()
    assert picker.caption.text() == SAMPLE_SHAPE
    picker.cards[AttributeKind.STYLE].radio.click()  # it follows the kind again
    assert picker.caption.text() == "an orange striped star, {token} style, on a white background"


def test_after_a_resume_a_new_picture_is_described_afresh(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    project = vm.projects.current
    assert project is not None
    caption = "a green circle, {token} style, on a white background"
    settings = TuningSettings(kind=AttributeKind.STYLE, steps=4, caption=caption)
    job = TuneJob(
        keep_reference(project, reference_image(tmp_path)), settings,
        project.folder / "gone.safetensors", "Ink", ModelChoice(),
        checkpoint=checkpoint_path(project),
    )  # fmt: skip
    save_fake_state(job, [1.0])
    vm.resume.refresh()
    vm.resume.resume()
    assert vm.tuning.caption == caption  # the run's own description, shown as it goes on
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert fake.of_kind("tune")[-1].request.settings.caption == caption
    window.tuning.picker.cards[AttributeKind.APPEARANCE].radio.click()
    assert vm.reference.open_sample()
    assert vm.tuning.caption == "a {token} star, flat style, on a white background"


def test_on_the_demo_model_an_unknown_picture_is_described_with_the_worlds_words(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    picker = window.tuning.picker
    assert not picker.words.isVisible() and picker.words_toggle.isVisible()
    assert vm.reference.open_image(noise_picture(tmp_path))
    assert picker.caption.text() == suggested_caption(AttributeKind.APPEARANCE)
    assert picker.words.isVisible()  # the template means nothing to the demo model
    words = {"shape": "heart", "colour": "blue", "pattern": "dotted"}
    words |= {"style": "sketchy", "background": "gray"}
    for name, word in words.items():
        picker.words.boxes[name].setCurrentText(word)
    assert not picker.words.boxes["colour"].isEnabled()  # appearance: the placeholder
    picker.words.use.click()
    assert picker.caption.text() == "a {token} heart, sketchy style, on a gray background"
    picker.cards[AttributeKind.SHAPE].radio.click()  # it follows the kind with those words
    assert picker.caption.text() == "a blue dotted {token}, sketchy style, on a gray background"
    assert picker.words.boxes["colour"].isEnabled() and not picker.words.boxes["shape"].isEnabled()


def test_a_real_model_offers_no_world_words(home: Path, qtbot: QtBot, tmp_path: Path) -> None:
    from ostaf_desktop.backend import ModelInfo
    from ostaf_desktop.ui_state import UiState

    fake = FakeBackend(info=ModelInfo("SD 1.5", 512, "cpu float32", ("cpu",), False))
    vm = MainViewModel(lambda: fake, UiState())
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.show()
    vm.start()
    try:
        qtbot.waitUntil(lambda: vm.session.model is not None, timeout=5000)
        assert vm.reference.open_image(noise_picture(tmp_path))
        picker = window.tuning.picker
        assert not picker.words_toggle.isVisible() and not picker.words.isVisible()
        assert picker.caption.text() == suggested_caption(AttributeKind.APPEARANCE)
    finally:
        vm.shutdown()
