"""The synthetic world: seeded scenes of one coloured, patterned shape in a drawing style.

A `Scene` is the ground truth; `Scene.render` draws it at any size (see `drawing`);
`caption` describes it with the words in `WORLD_WORDS`. Some
(shape, colour, pattern, style) combinations are held out of training so that a benchmark
can take its references from combinations a model has never seen.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from ostaf.errors import SettingsError
from ostaf.world import drawing, geometry, palette
from ostaf.world.geometry import SHAPES, UNIT_SHAPES

COLOURS: tuple[str, ...] = tuple(palette.COLOURS)
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checkered")
STYLES: tuple[str, ...] = ("flat", "outline", "sketchy")
BACKGROUNDS: tuple[str, ...] = tuple(palette.BACKGROUNDS)
ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "pattern", "style", "background")
VALUES: dict[str, tuple[str, ...]] = dict(
    zip(ATTRIBUTES, (SHAPES, COLOURS, PATTERNS, STYLES, BACKGROUNDS), strict=True)
)

Combo = tuple[str, str, str, str]  # (shape, colour, pattern, style)
Split = Literal["any", "train", "holdout"]

SIZE_RANGE = (0.42, 0.78)  # bounding-box side of the unturned shape, as a fraction of the canvas
ROTATION_RANGE = (-25.0, 25.0)  # degrees clockwise; hearts and stars stay upright-ish
MARGIN = 0.04  # fraction of the canvas kept free around the shape and its contour
HOLDOUT_COUNT = 60  # one combination in eight never appears in training
_HOLDOUT_SALT = "ostaf-world-holdout-v1"


@dataclass(frozen=True)
class Scene:
    """Ground truth of one image: what is drawn, where, and the seed of its small details."""

    shape: str
    colour: str
    pattern: str
    style: str
    background: str
    centre: tuple[float, float]  # (x, y) as fractions of the canvas
    size: float  # bounding-box side of the unturned shape, fraction of the canvas
    rotation: float  # degrees clockwise
    detail_seed: int  # pattern phase, stroke jitter, background tilt

    @property
    def combo(self) -> Combo:
        """The (shape, colour, pattern, style) tuple that the hold-out split is made of."""
        return (self.shape, self.colour, self.pattern, self.style)

    def attributes(self) -> dict[str, str]:
        """The categorical attributes by name."""
        return {name: getattr(self, name) for name in ATTRIBUTES}

    def caption(self, omit: Iterable[str] = ()) -> str:
        """Describe the scene, e.g. "a red striped star, outline style, on a white background"."""
        return caption(self, omit)

    def mask(self, size: int = 64) -> np.ndarray:
        """The shape's silhouette (without contour strokes) as a bool array (size, size)."""
        return drawing.silhouette(self, size)

    def render(self, size: int = 64) -> Image.Image:
        """The scene as an RGB image of `size`×`size` pixels."""
        return drawing.render(self, size)


def caption(scene: Scene, omit: Iterable[str] = ()) -> str:
    """Caption of `scene` leaving out the attributes named in `omit` (for caption dropout)."""
    left_out = set(omit)
    unknown = left_out - set(ATTRIBUTES)
    if unknown:
        raise SettingsError(f"Unknown attribute(s) {sorted(unknown)}; use {list(ATTRIBUTES)}.")
    words = [getattr(scene, name) for name in ("colour", "pattern") if name not in left_out]
    words.append("shape" if "shape" in left_out else scene.shape)
    article = "an" if words[0][0] in "aeiou" else "a"
    text = f"{article} {' '.join(words)}"
    if "style" not in left_out:
        text += f", {scene.style} style,"
    if "background" not in left_out:
        text += f" on a {scene.background} background"
    return text.rstrip(",")


def world_words() -> tuple[str, ...]:
    """Every word that can appear in a caption, in a stable order."""
    words = ["a", "an", "shape", "style", "on", "background"]
    for values in VALUES.values():
        words.extend(values)
    return tuple(dict.fromkeys(words))


WORLD_WORDS: tuple[str, ...] = world_words()


# ---------------------------------------------------------------------------- the split


def all_combos() -> tuple[Combo, ...]:
    """Every (shape, colour, pattern, style) combination, in a stable order."""
    return tuple(itertools.product(SHAPES, COLOURS, PATTERNS, STYLES))


@functools.cache
def holdout_combos() -> frozenset[Combo]:
    """The combinations never sampled for training: the first `HOLDOUT_COUNT` by a salted hash,
    so the split is stable across machines and Python versions."""

    def key(combo: Combo) -> bytes:
        return hashlib.sha256(f"{_HOLDOUT_SALT}:{':'.join(combo)}".encode()).digest()

    return frozenset(sorted(all_combos(), key=key)[:HOLDOUT_COUNT])


def is_holdout(scene_or_combo: Scene | Combo) -> bool:
    """Whether a scene's combination belongs to the hold-out split."""
    combo = scene_or_combo.combo if isinstance(scene_or_combo, Scene) else scene_or_combo
    return tuple(combo) in holdout_combos()


@functools.cache
def _candidates(split: Split, fixed: tuple[str | None, ...]) -> tuple[Combo, ...]:
    held = holdout_combos()
    pool = [
        combo
        for combo in all_combos()
        if all(want is None or want == have for want, have in zip(fixed, combo, strict=True))
        and (split == "any" or (combo in held) == (split == "holdout"))
    ]
    return tuple(pool)


@functools.cache
def allowed_backgrounds(colour: str, pattern: str, style: str) -> tuple[str, ...]:
    """Backgrounds on which this subject keeps every attribute visible."""
    return tuple(b for b in BACKGROUNDS if palette.background_allowed(b, colour, pattern, style))


# ---------------------------------------------------------------------------- sampling


_FIXABLE = (*ATTRIBUTES, "centre", "size", "rotation", "detail_seed")


def sample_scene(rng: random.Random | int, split: Split = "any", **fixed: Any) -> Scene:
    """A random scene; keyword arguments fix any field of `Scene` (e.g. `shape="heart"`).

    `split` restricts the (shape, colour, pattern, style) combination to training ("train")
    or to the hold-out ("holdout"). Impossible requests raise `SettingsError`.
    """
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    _check_request(split, fixed)
    key = tuple(fixed.get(name) for name in ("shape", "colour", "pattern", "style"))
    pool = [
        combo
        for combo in _candidates(split, key)
        if "background" not in fixed or fixed["background"] in allowed_backgrounds(*combo[1:])
    ]
    if not pool:
        raise SettingsError(f"No {split} scene has {fixed}; relax a fixed attribute.")
    shape, colour, pattern, style = rng.choice(pool)
    # Every random draw happens whether or not the field is fixed, so that fixing one field
    # leaves the stream, and so the other fields, as they would have been.
    background = rng.choice(allowed_backgrounds(colour, pattern, style))
    size = rng.uniform(*SIZE_RANGE)
    rotation = rng.uniform(*ROTATION_RANGE)
    unit_centre = (rng.random(), rng.random())
    detail_seed = rng.getrandbits(32)

    background = fixed.get("background", background)
    rotation = float(fixed.get("rotation", rotation))
    size = float(fixed["size"]) if "size" in fixed else min(size, _largest_size(shape, rotation))
    low, high = free_centre_range(shape, size, rotation)
    if np.any(low > high):
        raise SettingsError(f"A {shape} of size {size:.3f} does not fit; use a smaller size.")
    centre = tuple(float(c) for c in fixed.get("centre", low + (high - low) * unit_centre))
    if len(centre) != 2 or np.any(np.array(centre) < low) or np.any(np.array(centre) > high):
        raise SettingsError(f"Centre {centre} puts the {shape} off the canvas; move it inward.")
    detail_seed = int(fixed.get("detail_seed", detail_seed))
    return Scene(
        shape,
        colour,
        pattern,
        style,
        background,
        (centre[0], centre[1]),
        size,
        rotation,
        detail_seed,
    )


def _check_request(split: str, fixed: dict[str, Any]) -> None:
    unknown = set(fixed) - set(_FIXABLE)
    if unknown:
        raise SettingsError(f"sample_scene cannot fix {sorted(unknown)}; use {list(_FIXABLE)}.")
    for name in ATTRIBUTES:
        if name in fixed and fixed[name] not in VALUES[name]:
            raise SettingsError(f"Unknown {name} {fixed[name]!r}; use one of {VALUES[name]}.")
    if split not in ("any", "train", "holdout"):
        raise SettingsError(f"Unknown split {split!r}; use 'any', 'train' or 'holdout'.")


def _largest_size(shape: str, rotation: float) -> float:
    """The largest size at which the turned shape and its contour fit the canvas."""
    span = np.ptp(geometry.place(UNIT_SHAPES[shape], (0.0, 0.0), 0.5, rotation), axis=0).max()
    return 0.999 * (1.0 - 2 * MARGIN) / (float(span) + drawing.OUTLINE_WIDTH / 2)


def free_centre_range(shape: str, size: float, rotation: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest centre (fractions of the canvas) that keep the shape inside."""
    turned = geometry.place(UNIT_SHAPES[shape], (0.0, 0.0), size / 2, rotation)
    reach = (
        MARGIN + drawing.OUTLINE_WIDTH * size / 4
    )  # half the contour lies outside the silhouette
    return -turned.min(axis=0) + reach, 1.0 - turned.max(axis=0) - reach


def dataset(
    n: int,
    seed: int,
    size: int = 64,
    split: Split = "train",
    caption_dropout: float = 0.0,
    supersample: int = 4,
) -> Iterator[tuple[Image.Image, str, Scene]]:
    """`n` (image, caption, scene) triples, the same for the same arguments.

    With `caption_dropout` > 0 each attribute is left out of the caption with that
    probability, so that a model also learns prompts that do not name everything.
    `supersample` 2 or 3 draws faster with slightly rougher anti-aliasing.
    """
    rng = random.Random(seed)
    for _ in range(n):
        scene = sample_scene(rng, split=split)
        omit = [name for name in ATTRIBUTES if caption_dropout and rng.random() < caption_dropout]
        yield drawing.render(scene, size, supersample), caption(scene, omit), scene


def render(scene: Scene, size: int = 64) -> Image.Image:
    """The scene as an RGB image of `size`×`size` pixels."""
    return drawing.render(scene, size)
