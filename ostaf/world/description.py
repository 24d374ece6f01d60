"""A description of a demo-world picture for the Learn panel: the oracle reads the reference
and the world's caption of it is written with the attribute's words replaced by the
placeholder, exactly as the attribute benchmark tunes (no torch here)."""

from __future__ import annotations

from PIL import Image

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_cases import reference_caption
from ostaf.world.oracle import analyse
from ostaf.world.scenes import Scene

MIN_CONFIDENCE = 0.25  # the shape template match of a circle reads about 0.4


def describe_reference(image: Image.Image, kind: AttributeKind, token: str = "{token}") -> str:
    """The reference's description with `token` where the `kind`'s words go, or "" when the
    oracle cannot read every part of the picture with confidence (not a world picture)."""
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
        return ""
    scene = Scene(
        shape=str(values["shape"]),
        colour=str(values["colour"]),
        pattern=str(values["pattern"]),
        style=str(values["style"]),
        background=str(values["background"]),
        centre=(0.5, 0.5),
        size=0.7,
        rotation=0.0,
        detail_seed=0,
    )
    return reference_caption(scene, kind, token)
