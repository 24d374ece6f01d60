"""Every example prompt the window shows on the demo model is one the demo model can draw
(its world: coloured, patterned shapes in three styles); real models keep natural examples."""

from __future__ import annotations

from pathlib import Path

from ostaf.method.regions import DEFAULT_TOKEN
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.batch_dialog import BatchDialog
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import add_attribute
from tests.world_vocabulary import unknown_words


def shown_examples(window: MainWindow) -> list[str]:
    """The example prompts in the Render panel, the Batch dialog and the tuning picker."""
    render = window.render_panel
    window.shortcuts.batch.trigger()
    batch = window.batch_dialog
    assert isinstance(batch, BatchDialog)
    examples = [
        render.prompt.placeholderText().removeprefix("e.g. ").split(" — ")[0],
        render.negative.placeholderText().split("e.g. ")[1],
        *batch.prompts.placeholderText().splitlines()[1:],
        batch.negative.placeholderText().split("e.g. ")[1],
        *window.tuning.picker.class_word.placeholderText().split("e.g. ")[1].split(", "),
    ]
    batch.close()
    return examples


def test_examples_on_the_demo_model_are_pictures_it_can_draw(
    window: MainWindow, vm: MainViewModel
) -> None:
    assert vm.session.uses_demo_model
    examples = shown_examples(window)
    assert len(examples) >= 7 and all(examples)
    # The render panel writes its example with the word the next attribute gets.
    words = (DEFAULT_TOKEN, vm.words.next_word)
    unknown = {e: [w for w in unknown_words(e) if w not in words] for e in examples}
    assert unknown == {e: [] for e in examples}
    assert f"a {vm.words.next_word} heart" in examples[0]


def test_an_empty_prompt_on_the_demo_model_renders_a_picture_it_can_draw(
    window: MainWindow, vm: MainViewModel
) -> None:
    assert unknown_words(vm.rendering.effective_prompt()) == []  # nothing applied
    vm.library.set_applied(add_attribute(vm, "Ink"), True)  # tuned on "a photo of a sks object"
    prompt = vm.rendering.effective_prompt()
    assert DEFAULT_TOKEN in prompt and unknown_words(prompt, DEFAULT_TOKEN) == []
    window.shortcuts.batch.trigger()  # the Batch dialog starts from the same prompt
    assert vm.batch.prompts_text == prompt


def test_real_models_keep_natural_examples(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    assert vm.session.update_settings(model_source=str(tmp_path / "model.safetensors"))
    assert "teapot" in window.render_panel.prompt.placeholderText()
    assert "vase" in window.tuning.picker.class_word.placeholderText()
    vm.library.set_applied(add_attribute(vm, "Ink"), True)
    assert vm.rendering.effective_prompt() == "a photo of a sks object"
