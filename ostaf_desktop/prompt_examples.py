"""Example prompts the window shows (placeholders, kind examples): on the demo model, only
pictures its world holds (coloured, patterned shapes in three styles, `ostaf.world.scenes`),
so that trying an example shows what an attribute does; on real models, natural ones."""

from __future__ import annotations

from dataclasses import dataclass

from ostaf.method.previews import preview_prompt
from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind


@dataclass(frozen=True)
class PromptExamples:
    """The examples of one kind of model; `prompts` are what a user may type as they are."""

    token: str  # the placeholder word that names the attribute in a prompt
    prompt: str  # a render prompt using the attribute's token
    negative: str  # a negative prompt
    batch: tuple[str, ...]  # a few render prompts, one per line in the Batch dialog
    class_words: str  # class words, comma separated
    kinds: dict[AttributeKind, str]  # what each kind carries over, from one picture to another

    @property
    def prompts(self) -> tuple[str, ...]:
        """Every example that is typed into a prompt field (checked against the model)."""
        return (self.prompt, self.negative, *self.batch, *self.class_words.split(", "))


def prompt_examples(demo: bool, token: str = DEFAULT_TOKEN) -> PromptExamples:
    """The examples for the demo model (`demo`) or a real one, with `token` as the attribute."""
    if demo:
        return PromptExamples(
            token=token,
            prompt=preview_prompt(AttributeKind.APPEARANCE, token, demo_world=True),
            negative="sketchy style",
            batch=(
                f"a {token} circle, flat style, on a white background",
                f"a {token} square, outline style, on a cream background",
            ),
            class_words="star, heart, circle",
            kinds={
                AttributeKind.APPEARANCE: "e.g. an orange striped star → a heart with its stripes",
                AttributeKind.SHAPE: "e.g. the star of a picture → a blue dotted star",
                AttributeKind.STYLE: "e.g. sketchy strokes → any shape drawn that way",
            },
        )
    return PromptExamples(
        token=token,
        prompt=f"a photo of a {token} teapot on a table",
        negative="blurry, low quality",
        batch=(f"a photo of a {token} teapot", f"a painting of a {token} vase"),
        class_words="vase, cat, portrait",
        kinds={
            AttributeKind.APPEARANCE: (
                "e.g. the blue crackle glaze of a vase → a teapot with that glaze"
            ),
            AttributeKind.SHAPE: "e.g. a cat's curled-up pose → a fox sleeping in that pose",
            AttributeKind.STYLE: "e.g. a loose watercolour sketch → any subject painted that way",
        },
    )
