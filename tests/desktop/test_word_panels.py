"""Each attribute's own word in the window: the Learn panel says which word a new attribute
gets, the library shows and changes words, ticked attributes that share a word are refused
with a one-click fix, and a click writes a word into the prompt."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from ostaf.errors import SettingsError
from ostaf.library.attribute_meta import read_meta
from ostaf.method.words import DEMO_CANDIDATES, attribute_word
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import Dialogs, FakeBackend, add_attribute, reference_image


def test_the_learn_panel_shows_the_word_a_new_attribute_gets_and_tunes_with_it(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    picker = window.tuning.picker
    assert vm.tuning.word == DEMO_CANDIDATES[0] == "cat"  # the fake model is the demo model
    assert picker.word.text().startswith("<b") and ">cat</b>" in picker.word.text()
    add_attribute(vm, "Old glaze", seed=1)  # from before words: sks, which is not the next
    add_attribute(vm, "Pose", seed=2, word="cat")
    following = DEMO_CANDIDATES[1]
    assert vm.tuning.word == following and f">{following}</b>" in picker.word.text()
    assert vm.reference.open_image(reference_image(tmp_path))
    vm.tuning.steps = 10
    assert vm.tuning.tune() is not None
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert fake.of_kind("tune")[0].request.settings.token == following
    newest = vm.library.row(vm.library.selected_id)
    assert newest is not None and newest.token == following
    assert attribute_word(read_meta(newest.path)) == following
    assert vm.tuning.word == DEMO_CANDIDATES[2]  # the next run gets the next free word


def test_ticked_attributes_with_one_word_are_refused_and_fixed_in_one_click(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    first = add_attribute(vm, "Blue glaze", seed=1)
    second = add_attribute(vm, "Ink", seed=2)  # both from before words: sks
    vm.library.set_applied(first, True)
    vm.library.set_applied(second, True)
    panel = window.render_panel
    assert vm.words.clash.startswith("'Blue glaze' and 'Ink' both use the word 'sks'")
    assert panel.clash.isVisible() and panel.clash.text() == vm.words.clash
    assert panel.clash_fix.isVisible() and panel.clash_fix.text() == "Give 'Ink' its own word"
    assert not panel.render_button.isEnabled() and vm.rendering.render() is None
    qtbot.wait(400)  # past the preview's debounce: nothing was asked of the worker
    assert fake.of_kind("preview") == [] and fake.of_kind("render") == []
    assert vm.rendering.preview_caption == "Not previewed: two ticked attributes share a word"
    vm.library.set_intensity(second, 0.0)  # at λ 0 it adds nothing: no clash
    assert vm.words.clash == "" and not panel.clash.isVisible()
    vm.library.set_intensity(second, 1.0)

    panel.clash_fix.click()
    qtbot.waitUntil(lambda: vm.idle and not vm.words.renaming, timeout=5000)
    (call,) = fake.of_kind("word")
    assert (call.request.word, call.request.attribute.stem) == ("cat", second)
    assert attribute_word(read_meta(vm.library.row(second).path)) == "cat"  # type: ignore[union-attr]
    assert vm.words.clash == "" and not panel.clash.isVisible()
    assert "'Ink' is now written cat in prompts (was sks)" in vm.session.status_message
    assert sorted(s.word.text() for s in panel.sliders()) == ["+ cat", "+ sks"]
    qtbot.waitUntil(lambda: len(fake.of_kind("preview")) == 1, timeout=5000)
    assert panel.render_button.isEnabled()


def test_the_library_changes_a_word_and_refuses_a_taken_or_bad_one(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, dialogs: Dialogs, qtbot: QtBot
) -> None:
    glaze = add_attribute(vm, "Blue glaze", seed=1)
    add_attribute(vm, "Ink", seed=2, word="cat")
    vm.library.selected_id = glaze
    details = window.library.details
    path = vm.library.row(glaze).path  # type: ignore[union-attr]
    original = path.read_bytes()
    assert details.word.text() == "sks" and details.change_word.isVisible()
    for typed, message in (
        ("CAT", "'Ink' already uses the word 'cat' in this project"),
        ("two words", "must be one word"),
    ):
        dialogs.texts.append(typed)
        details.change_word.click()
        assert vm.session.error is not None and message in vm.session.error.message
        vm.session.dismiss_error()
    assert fake.of_kind("word") == [] and path.read_bytes() == original
    assert dialogs.asked[-1] == "Attribute word"

    fake.fail_word = SettingsError("'zqx' is 3 tokens for this model's tokenizer")
    dialogs.texts.append("zqx")
    details.change_word.click()
    qtbot.waitUntil(lambda: vm.session.error is not None, timeout=5000)
    assert "3 tokens" in vm.session.error.message and path.read_bytes() == original  # type: ignore[union-attr]
    vm.session.dismiss_error()
    fake.fail_word = None

    dialogs.texts.append("Dog")
    details.change_word.click()
    qtbot.waitUntil(lambda: vm.idle and not vm.words.renaming, timeout=5000)
    assert vm.session.error is None
    assert attribute_word(read_meta(path)) == "dog"
    assert vm.library.selected_id == glaze and details.word.text() == "dog"  # its id stays
    items = [window.library.list.item(i).text() for i in range(window.library.list.count())]
    assert "Blue glaze\nappearance · dog · λ 1" in items


def test_a_click_writes_the_word_into_the_prompt(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot
) -> None:
    vm.library.set_applied(add_attribute(vm, "Ink", seed=2, word="cat"), True)
    panel = window.render_panel
    (slider,) = panel.sliders()
    assert slider.word.text() == "+ cat" and not slider.word.isHidden()
    assert "'cat' names the attribute" in panel.prompt.placeholderText()
    slider.word.click()
    assert vm.rendering.prompt == "cat"
    vm.rendering.prompt = "a star, flat style"
    cursor = panel.prompt.textCursor()
    cursor.setPosition(2)
    panel.prompt.setTextCursor(cursor)
    slider.word.click()
    assert vm.rendering.prompt == "a cat star, flat style"
    assert panel.prompt.textCursor().position() == len("a cat")
    assert vm.rendering.insert_word("cat", len("a cat star")) == len("a cat star cat")
    assert vm.rendering.prompt == "a cat star cat, flat style"


def test_the_batch_dialog_refuses_a_combination_that_shares_a_word(
    window: MainWindow, vm: MainViewModel
) -> None:
    from PySide6.QtCore import Qt

    add_attribute(vm, "Blue glaze", seed=1)
    add_attribute(vm, "Ink", seed=2)  # both sks
    window.shortcuts.batch.trigger()
    dialog = window.batch_dialog
    assert dialog is not None
    for index in range(dialog.attributes.count()):
        dialog.attributes.item(index).setCheckState(Qt.CheckState.Checked)
    dialog.combine.setCurrentIndex(dialog.combine.findData("together"))
    assert "both use the word 'sks'" in dialog.error.text() and not dialog.start.isEnabled()
    dialog.combine.setCurrentIndex(dialog.combine.findData("each"))  # one at a time: allowed
    assert dialog.error.isHidden() and dialog.start.isEnabled()


def test_a_new_word_ready_after_its_project_closed_changes_nothing(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    glaze = add_attribute(vm, "Blue glaze", seed=1)
    path = vm.library.row(glaze).path  # type: ignore[union-attr]
    original = path.read_bytes()
    fake.gate.clear()  # the worker waits
    assert vm.words.change_word(glaze, "dog") is not None
    assert vm.projects.create("Another")
    fake.gate.set()
    qtbot.waitUntil(lambda: not vm.words.renaming, timeout=5000)
    assert "closed before the new word was ready" in vm.session.status_message
    assert path.read_bytes() == original


def test_when_every_suggested_word_is_taken_the_error_says_so_not_a_taken_word(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    from ostaf.method.words import CLIP_CANDIDATES, DEMO_CANDIDATES

    words = sorted(set(DEMO_CANDIDATES) | set(CLIP_CANDIDATES))  # whichever list applies
    for index, word in enumerate(words):
        add_attribute(vm, f"Attribute {index}", seed=index, word=word)
    twin = add_attribute(vm, "Twin", seed=99, word="cat")  # a word in use twice
    assert vm.words.suggestion() in words  # the least used one: all are taken
    assert vm.words.give_own_word(twin) is None
    error = vm.session.error
    assert error is not None
    assert "every word OSTAF suggests is in use in this project" in error.message
    assert "e.g." not in error.message  # no taken word offered as a free one
    assert fake.of_kind("word") == []
