"""A description of a demo-world picture for the Learn panel: the oracle reads the reference
and the world's caption of it is written with the attribute's words replaced by the
placeholder, exactly as the attribute benchmark tunes (no torch here)."""

from __future__ import annotations

from collections.abc import Mapping

from PIL import Image

from ostaf.errors import SettingsError
from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_cases import TRANSFERRED, reference_caption
from ostaf.world.oracle import analyse
from ostaf.world.scenes import ATTRIBUTES, VALUES, Scene

MIN_CONFIDENCE = 0.25  # the shape template match of a circle reads about 0.4


def describe_reference(image: Image.Image, kind: AttributeKind, token: str = "{token}") -> str:
    """The reference's description with `token` where the `kind`'s words go, or "" when the
    oracle cannot read every part of the picture with confidence (not a world picture)."""
    words = read_words(image)
    return describe_words(words, kind, token) if words is not None else ""


def read_words(image: Image.Image) -> dict[str, str] | None:
    """The world's word for each of shape, colour, pattern, style and background that the
    oracle reads in `image`, or None when it cannot read every one with confidence."""
    seen = analyse(image.convert("RGB"))
    values = seen.attributes()
    confidences = (
        seen.shape_confidence,
        seen.colour_confidence,
        seen.pattern_confidence,
        seen.style_confidence,
        seen.background_confidence,
    )
    if any(value is None for value in values.values()) or min(confidences) < MIN_CONFIDENCE:
        return None
    return {name: str(values[name]) for name in ATTRIBUTES}


def describe_all(words: Mapping[str, str]) -> tuple[str, dict[AttributeKind, str]]:
    """For learning all three: the description of a world picture of these `words` with
    {shape}, {appearance} and {style} where each kind's words go, and each kind's own words
    (what its single run's description names), e.g. ("a {appearance} {shape}, {style} style,
    on a white background", {shape: "star", appearance: "red striped", style: "flat"})."""
    plain = describe_words(words, AttributeKind.APPEARANCE, "{appearance}")
    caption = plain.replace(f" {words['shape']},", " {shape},", 1).replace(
        f", {words['style']} style,", ", {style} style,", 1
    )
    described = {
        AttributeKind.SHAPE: words["shape"],
        AttributeKind.APPEARANCE: f"{words['colour']} {words['pattern']}",
        AttributeKind.STYLE: words["style"],
    }
    return caption, described


def describe_words(words: Mapping[str, str], kind: AttributeKind, token: str = "{token}") -> str:
    """The description of a world picture of these `words` (one value of `VALUES` for each
    of shape, colour, pattern, style and background), with `token` where the `kind`'s words
    go; e.g. appearance: "a {token} star, flat style, on a white background"."""
    for name in ATTRIBUTES:
        if words.get(name) not in VALUES[name]:
            raise SettingsError(
                f"{name} {words.get(name)!r} is not a word of the demo world; "
                f"choose one of {', '.join(VALUES[name])}"
            )
    scene = Scene(
        shape=words["shape"],
        colour=words["colour"],
        pattern=words["pattern"],
        style=words["style"],
        background=words["background"],
        centre=(0.5, 0.5),
        size=0.7,
        rotation=0.0,
        detail_seed=0,
    )
    return reference_caption(scene, kind, token)


def words_in_description(kind: AttributeKind) -> tuple[str, ...]:
    """Which of the world's attributes a `kind`'s description names (the others are what
    the attribute learns, written as the placeholder)."""
    return tuple(name for name in ATTRIBUTES if name not in TRANSFERRED[kind])
