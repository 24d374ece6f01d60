"""Re-open a rendered image's settings: from a file (File menu) or from the results strip, into
the Render panel, with the attributes found in the library ticked at their λ and a clear
message for those that are not."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.interop.pngmeta import write_png
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, add_attribute


def rendered_png(path: Path, attributes: list[dict[str, object]]) -> Path:
    record = {
        "prompt": "a sks teapot on a table",
        "negative_prompt": "blurry",
        "seed": 4242,
        "steps": 33,
        "guidance": 5.5,
        "sampler": "euler",
        "width": 64,
        "height": 96,
        "model": {"name": "Fake model", "fingerprint": "fake"},
        "attributes": attributes,
    }
    return write_png(path, Image.new("RGB", (64, 96)), "a sks teapot\nSteps: 33", record)


def test_open_image_settings_fills_the_render_panel(
    window: MainWindow, vm: MainViewModel, dialogs: Dialogs, tmp_path: Path
) -> None:
    glaze = add_attribute(vm, "Blue glaze", seed=1)
    pose = add_attribute(vm, "Curled pose", seed=2)
    vm.library.delete(pose)
    png = rendered_png(
        tmp_path / "render.png",
        [
            {"name": "Blue glaze", "intensity": 0.7, "content_hash": glaze + "0" * 48},
            {"name": "Curled pose", "intensity": 1.2, "content_hash": pose + "0" * 48},
            {"name": "Lost style", "intensity": 1.0, "content_hash": "f" * 64},
        ],
    )
    dialogs.files.append(str(png))
    window.shortcuts.open_settings.trigger()
    panel = window.render_panel
    assert panel.prompt.toPlainText() == "a sks teapot on a table"
    assert panel.negative.toPlainText() == "blurry"
    assert (panel.seed.value(), panel.steps.value(), panel.guidance.value()) == (4242, 33, 5.5)
    assert panel.sampler.currentData() == "euler"
    assert panel.size_combo.currentData() == "64x96" and "64×96" in panel.size_combo.currentText()
    assert [(a.id, a.intensity) for a in vm.library.applied] == [(glaze, 0.7)]
    (slider,) = panel.sliders()
    assert slider.intensity == 0.7
    assert "Image settings" in dialogs.asked
    message = vm.session.status_message
    assert message == "Opened the settings of render.png (1 attribute ticked, 2 not found)"


def test_the_message_names_what_is_missing(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    shown: list[str] = []
    vm.session.notice.connect(lambda _title, text: shown.append(text))
    pose = add_attribute(vm, "Curled pose", seed=2)
    vm.library.delete(pose)
    png = rendered_png(
        tmp_path / "render.png",
        [
            {"name": "Curled pose", "intensity": 1.2, "content_hash": pose + "0" * 48},
            {"name": "Lost style", "intensity": 1.0, "content_hash": "f" * 64},
        ],
    )
    assert vm.image_settings.open(png)
    (text,) = shown
    assert "'Curled pose' (λ 1.2) is in this project's trash" in text
    assert "'Lost style' (λ 1) is in no project library" in text
    assert vm.library.applied == ()


def test_a_result_can_reuse_its_settings(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    glaze = add_attribute(vm, "Blue glaze", seed=1)
    vm.library.set_applied(glaze, True)
    vm.library.set_intensity(glaze, 1.4)
    vm.rendering.prompt, vm.rendering.seed, vm.rendering.count = "a sks bowl", 99, 1
    vm.rendering.render()
    qtbot.waitUntil(lambda: len(vm.results.items) == 1, timeout=5000)
    vm.rendering.prompt, vm.rendering.seed = "something else", 1
    vm.library.set_applied(glaze, False)

    menu = window.results.context_menu()
    reuse = next(a for a in menu.actions() if a.text().startswith("Use its settings"))
    assert reuse.isEnabled()
    reuse.trigger()
    assert (vm.rendering.prompt, vm.rendering.seed) == ("a sks bowl", 99)
    assert [(a.id, a.intensity) for a in vm.library.applied] == [(glaze, 1.4)]
    assert vm.session.error is None


def test_an_image_without_settings_is_refused(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    plain = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(plain)
    vm.rendering.prompt = "kept"
    assert not vm.image_settings.open(plain)
    assert vm.session.error is not None and "no generation parameters" in vm.session.error.message
    assert vm.rendering.prompt == "kept"


def test_values_the_renderer_refuses_are_reset_and_listed(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    """Recall resets what RenderSettings would refuse; the message lists each reset."""
    shown: list[str] = []
    vm.session.notice.connect(lambda _title, text: shown.append(text))
    record = {
        "prompt": "a teapot",
        "seed": 7,
        "steps": 99_999,
        "guidance": 5.5,
        "sampler": "evil\x1b[2J",
        "width": 64,
        "height": 64,
    }
    png = write_png(tmp_path / "odd.png", Image.new("RGB", (8, 8)), "a teapot\nSteps: 1", record)
    assert vm.image_settings.open(png)
    panel = window.render_panel
    assert (panel.steps.value(), panel.sampler.currentData()) == (25, "dpmpp2m")
    (text,) = shown
    assert "• steps 99999 must be a whole number in 1..500 (reset to 25)" in text
    assert "• sampler 'evil\\x1b[2J' is unknown" in text
