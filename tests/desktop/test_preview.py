"""The λ slider: moving it requests one quick preview after the debounce; a newer request
supersedes an older one; Render writes images into the results strip."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.rendering import PREVIEW_DEBOUNCE_MS, PREVIEW_STEPS
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, FakeBackend, add_attribute


def test_slider_moves_request_one_preview_after_debounce(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    attribute = add_attribute(vm)
    vm.library.set_applied(attribute, True)
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 1 and vm.idle, timeout=5000)
    (slider,) = window.render_panel.sliders()
    for value in (110, 125, 140, 160, 175):
        slider.slider.setValue(value)
    assert vm.rendering.preview_pending and len(fake.of_kind("preview")) == 1
    qtbot.wait(PREVIEW_DEBOUNCE_MS // 3)
    assert len(fake.of_kind("preview")) == 1  # still debouncing
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 2 and vm.idle, timeout=5000)
    qtbot.wait(PREVIEW_DEBOUNCE_MS * 2)
    previews = fake.of_kind("preview")
    assert len(previews) == 2
    request = previews[-1].request
    assert [a.intensity for a in request.settings.attributes] == [1.75]
    assert request.settings.steps == PREVIEW_STEPS and request.out_dir is None
    assert vm.rendering.preview_image is not None
    assert "λ 1.75" in window.render_panel.caption.text()


def test_the_preview_follows_prompt_edits_after_the_debounce(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    vm.library.set_applied(add_attribute(vm), True)
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 1 and vm.idle, timeout=5000)
    for text in ("a sks", "a sks heart", "a sks heart, outline style"):
        window.render_panel.prompt.setPlainText(text)  # typing
    assert vm.rendering.preview_pending
    qtbot.wait(PREVIEW_DEBOUNCE_MS // 3)
    assert len(fake.of_kind("preview")) == 1  # still debouncing
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 2 and vm.idle, timeout=5000)
    assert fake.of_kind("preview")[-1].request.settings.prompt == "a sks heart, outline style"
    window.render_panel.negative.setPlainText("sketchy style")
    window.render_panel.seed.setValue(7)
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 3 and vm.idle, timeout=5000)
    qtbot.wait(PREVIEW_DEBOUNCE_MS * 2)
    (*_, last) = fake.of_kind("preview")
    assert len(fake.of_kind("preview")) == 3  # one preview for both edits
    assert (last.request.settings.negative_prompt, last.request.settings.seeds) == (
        "sketchy style",
        [7],
    )


def test_newer_preview_cancels_the_running_one(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    attribute = add_attribute(vm)
    fake.gate.clear()  # previews block until released
    vm.library.set_applied(attribute, True)
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 1, timeout=5000)
    first = fake.of_kind("preview")[0]
    vm.library.set_intensity(attribute, 0.5)
    qtbot.waitUntil(lambda: first.cancel.cancelled, timeout=5000)
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 2, timeout=5000)
    fake.gate.set()
    qtbot.waitUntil(lambda: vm.idle and vm.rendering.preview_image is not None, timeout=5000)
    assert [a.intensity for a in fake.of_kind("preview")[1].request.settings.attributes] == [0.5]


def test_render_fills_the_results_strip(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    attribute = add_attribute(vm)
    vm.library.set_applied(attribute, True)
    vm.rendering.count = 3
    vm.rendering.seed = 10
    window.shortcuts.render.trigger()
    qtbot.waitUntil(lambda: not vm.rendering.rendering and len(vm.results.items) == 3, timeout=5000)
    (call,) = fake.of_kind("render")
    assert call.request.settings.seeds == [10, 11, 12]
    assert call.request.out_dir == vm.projects.current.exports_dir  # type: ignore[union-attr]
    assert window.results.list.count() == 3
    assert all(item.path is not None and item.path.is_file() for item in vm.results.items)
    window.shortcuts.dice.trigger()
    assert vm.rendering.seed != 10 or window.render_panel.seed.value() == vm.rendering.seed


def test_saving_a_result_copies_the_png(
    window: MainWindow,
    vm: MainViewModel,
    fake: FakeBackend,
    qtbot: QtBot,
    dialogs: Dialogs,
    tmp_path: Path,
) -> None:
    vm.rendering.count = 1
    vm.rendering.render()
    qtbot.waitUntil(lambda: len(vm.results.items) == 1, timeout=5000)
    target = tmp_path / "copy.png"
    dialogs.files.append(str(target))
    window.results.save_current()
    assert target.read_bytes() == vm.results.items[0].path.read_bytes()  # type: ignore[union-attr]
    assert fake.of_kind("render")[0].request.settings.attributes == []


LONG_WARNING = (
    "'Ink' was tuned on 'a friend's fine-tune of Stable Diffusion 1.5', this is 'Fake model' "
    "(same layers, other weights): results may differ"
)


def test_a_warning_about_the_applied_attributes_is_shown_in_full_in_the_render_panel(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    window.resize(1280, 720)
    fake.render_warnings = [LONG_WARNING]
    vm.library.set_applied(add_attribute(vm, "Ink", seed=1), True)
    vm.library.set_applied(add_attribute(vm, "Blue crackle glaze", seed=2, word="cat"), True)
    shown = window.render_panel.warnings
    qtbot.waitUntil(lambda: shown.isVisible(), timeout=5000)  # the preview warns already
    assert shown.text() == f"⚠ {LONG_WARNING}" and shown.wordWrap()
    qtbot.wait(50)
    assert shown.height() >= shown.heightForWidth(shown.width())  # every line shows
    vm.rendering.render()
    qtbot.waitUntil(lambda: not vm.rendering.rendering, timeout=5000)
    assert vm.session.status_message.endswith("(see the warning in the Render panel)")
    fake.render_warnings = []
    vm.library.set_intensity(vm.library.applied[0].id, 0.0)
    qtbot.waitUntil(lambda: vm.idle and not shown.isVisible(), timeout=5000)
    for entry in vm.library.applied:
        vm.library.set_applied(entry.id, False)
    assert vm.rendering.warnings == ""


def test_the_benchmark_times_the_preview_the_window_renders() -> None:
    from bench import rendering_speed

    assert rendering_speed.PREVIEW_STEPS == PREVIEW_STEPS
    assert rendering_speed.PREVIEW_DEBOUNCE_MS == PREVIEW_DEBOUNCE_MS
