"""The demo world's description of a reference: the oracle's reading written as the
benchmark's tuning caption, with the attribute's words replaced by the placeholder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ostaf.errors import SettingsError
from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_cases import reference_caption, references
from ostaf.world.description import describe_reference, describe_words, words_in_description


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_held_out_references_are_described_as_the_benchmark_tunes_them(
    kind: AttributeKind,
) -> None:
    for scene in references(kind, 4):
        image = scene.render(64)
        assert describe_reference(image, kind) == reference_caption(scene, kind, "{token}")


def test_noise_is_not_described() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert describe_reference(Image.fromarray(noise), AttributeKind.STYLE) == ""


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_chosen_words_are_described_as_the_benchmark_tunes_them(kind: AttributeKind) -> None:
    for scene in references(kind, 3):
        assert describe_words(scene.attributes(), kind) == reference_caption(scene, kind, "{token}")
        named = words_in_description(kind)
        caption = describe_words(scene.attributes(), kind)
        assert all(scene.attributes()[name] in caption for name in named)


def test_a_word_from_outside_the_world_is_refused_by_name() -> None:
    words = {"shape": "star", "colour": "teal", "pattern": "plain"}
    words |= {"style": "flat", "background": "white"}
    with pytest.raises(SettingsError, match="colour 'teal' is not a word of the demo world"):
        describe_words(words, AttributeKind.SHAPE)
