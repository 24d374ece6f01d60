"""Drawing a `Scene`: supersampled palette-index drawing with Pillow, then a box reduction.

The subject is drawn aliased at `supersample`× on a transparent layer of four palette
indices (empty, fill, pattern tone, ink); reducing it gives anti-aliased coverage, which is
composited over a background computed directly at the output size.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from ostaf.world import geometry, palette
from ostaf.world.geometry import UNIT_SHAPES

if TYPE_CHECKING:
    from ostaf.world.scenes import Scene

# Style and pattern geometry, in unit-shape coordinates (the shape's larger side is 2).
OUTLINE_WIDTH = 0.24  # a thick contour: about 4 px for a mid-sized shape at 64 px
SKETCH_WIDTH = 0.05  # a pencil line: about 1 px at 64 px
SKETCH_STROKES = 2
STRIPE_PERIOD = 2 / 3.6
DOT_SPACING = 2 / 3.8
DOT_RADIUS = 0.25 * DOT_SPACING  # about 23 % of the surface is dots
CHECK_CELL = 2 / 4
_DOT_LATTICE = np.array(
    [
        ((i + 0.5 * (j % 2)) * DOT_SPACING, j * DOT_SPACING * math.sqrt(3) / 2)
        for j in range(-4, 5)
        for i in range(-4, 4)
    ]
)
_DOT_LATTICE = _DOT_LATTICE[np.abs(_DOT_LATTICE).max(axis=1) <= 1.3 + DOT_SPACING]
# The marked squares of a checkerboard around the origin, (n, 4 corners, xy).
_CHECK_SQUARES = np.array(
    [
        np.array([[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]]) * CHECK_CELL
        for i, j in itertools.product(range(-3, 3), repeat=2)
        if (i + j) % 2 == 0
    ]
)


def _flat(points: np.ndarray) -> list[float]:
    return points.ravel().tolist()


def outline_px(scene: Scene, canvas: int) -> np.ndarray:
    """The scene's shape polygon in pixels of a `canvas`-sized square."""
    centre = (scene.centre[0] * canvas, scene.centre[1] * canvas)
    return geometry.place(UNIT_SHAPES[scene.shape], centre, scene.size * canvas / 2, scene.rotation)


def silhouette(scene: Scene, size: int) -> np.ndarray:
    """The shape's polygon (no strokes, no sketchy offset) as a bool array (size, size)."""
    canvas = Image.new("L", (4 * size, 4 * size), 0)
    ImageDraw.Draw(canvas).polygon(_flat(outline_px(scene, 4 * size)), fill=255)
    return np.asarray(canvas.reduce(4)) >= 128


def render(scene: Scene, size: int = 64, supersample: int = 4) -> Image.Image:
    """Draw `scene` at `supersample`× and box-reduce it to `size`×`size` RGB."""
    canvas = size * supersample
    rng = random.Random(scene.detail_seed)
    half = scene.size * canvas / 2  # pixels per unit-shape coordinate
    background = _background(scene.background, size, rng)
    # The subject is drawn as palette indices (aliased, one byte a pixel, fast) on a
    # transparent canvas; the supersampled reduction then gives coverage-weighted colours.
    layer = Image.new("P", (canvas, canvas), _EMPTY)
    layer.putpalette(_subject_palette(scene.colour), "RGBA")
    draw = ImageDraw.Draw(layer)
    outline = outline_px(scene, canvas)
    fill, shift = outline, np.zeros(2)
    if scene.style == "sketchy":
        # A hand-coloured look: the colour is laid in a little off the drawn lines.
        angle = rng.uniform(0, 2 * math.pi)
        shift = 0.12 * half * np.array([math.cos(angle), math.sin(angle)])
        fill = geometry.wobble(geometry.densify(outline, 0.15 * half), rng, 0.06 * half) + shift
    draw.polygon(_flat(fill), fill=_FILL)
    if scene.pattern != "plain":
        silhouette = Image.new("L", (canvas, canvas), 0)
        ImageDraw.Draw(silhouette).polygon(_flat(fill), fill=255)
        centre = np.array(scene.centre) * canvas + shift
        marks = _pattern_marks(scene.pattern, canvas, centre, half, scene.rotation, rng)
        layer.paste(_TONE, mask=ImageChops.multiply(marks, silhouette))
    if scene.style == "outline":
        _closed_line(draw, outline, max(1, round(OUTLINE_WIDTH * half)), _INK)
    elif scene.style == "sketchy":
        width = max(1, round(SKETCH_WIDTH * half))
        for _ in range(SKETCH_STROKES):
            _sketch_stroke(draw, outline, half, width, _INK, rng)
    rgba = layer.convert("RGBA")
    # Pillow reduces RGBA with premultiplied alpha and returns straight alpha.
    small = np.asarray(rgba.reduce(supersample) if supersample > 1 else rgba, dtype=np.float32)
    alpha = small[..., 3:] / 255.0
    out = small[..., :3] * alpha + background * (1.0 - alpha)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


_EMPTY, _FILL, _TONE, _INK = 0, 1, 2, 3  # palette indices of the subject layer


@functools.cache
def _subject_palette(colour: str) -> tuple[int, ...]:
    entries = ((0, 0, 0), palette.COLOURS[colour], palette.tone_of(colour), palette.ink_of(colour))
    alphas = (0, 255, 255, 255)
    return tuple(v for rgb, a in zip(entries, alphas, strict=True) for v in (*rgb, a))


def _closed_line(draw: ImageDraw.ImageDraw, points: np.ndarray, width: int, ink: int) -> None:
    """A closed contour of constant width, rounded only at sharp corners.

    Pillow's own round joints cost one pie slice per vertex; dense outlines do not need them.
    """
    draw.line(_flat(np.vstack([points, points[:1]])), fill=ink, width=width)
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    cosine = (before * after).sum(axis=1) / (
        np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1) + 1e-9
    )
    radius = width / 2
    for x, y in points[cosine < math.cos(math.radians(15))]:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)


def _background(name: str, size: int, rng: random.Random) -> np.ndarray:
    """A plain colour or vertical gradient, tilted by a few levels in a random direction,
    as float RGB (size, size, 3)."""
    top, bottom = (np.array(c, dtype=np.float32) for c in palette.BACKGROUNDS[name])
    direction = rng.uniform(0, 2 * math.pi)
    tilt = rng.uniform(2.0, 7.0)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    across = ramp[None, :] * math.cos(direction) + ramp[:, None] * math.sin(direction)
    down = (ramp[:, None, None] + 1.0) / 2.0
    return top + (bottom - top) * down + tilt * across[..., None]


def _pattern_marks(
    pattern: str,
    canvas: int,
    centre: np.ndarray,
    half: float,
    rotation: float,
    rng: random.Random,
) -> Image.Image:
    """An L mask of the pattern's marks (stripes, dots or checks) in the shape's own frame."""
    marks = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(marks)
    where = (float(centre[0]), float(centre[1]))
    if pattern == "striped":
        angle = rng.uniform(0, math.pi)
        along = np.array([math.cos(angle), math.sin(angle)]) * 2.0
        across = np.array([-math.sin(angle), math.cos(angle)])
        starts = (rng.uniform(0, STRIPE_PERIOD) + STRIPE_PERIOD * np.arange(-5, 5))[:, None, None]
        # Each stripe is a long quadrilateral from `start` to `start + period/2` across.
        corners = np.array([-along, along, along, -along])[None] + across * (
            starts + np.array([0, 0, 0.5, 0.5])[None, :, None] * STRIPE_PERIOD
        )
        polygons: np.ndarray = geometry.place(corners.reshape(-1, 2), where, half, rotation)
        for polygon in polygons.reshape(-1, 8):
            draw.polygon(polygon.tolist(), fill=255)
    elif pattern == "dotted":
        offset = np.array([rng.uniform(0, DOT_SPACING), rng.uniform(0, DOT_SPACING)])
        radius = DOT_RADIUS * half
        for x, y in geometry.place(_DOT_LATTICE + offset, where, half, rotation):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    elif pattern == "checkered":
        offset = np.array([rng.uniform(0, CHECK_CELL), rng.uniform(0, CHECK_CELL)])
        squares = (_CHECK_SQUARES + offset).reshape(-1, 2)
        for polygon in geometry.place(squares, where, half, rotation).reshape(-1, 8):
            draw.polygon(polygon.tolist(), fill=255)
    return marks


def _sketch_stroke(
    draw: ImageDraw.ImageDraw,
    outline: np.ndarray,
    half: float,
    width: int,
    ink: int,
    rng: random.Random,
) -> None:
    """One pencil pass around the outline: wobbly, slightly off, overshooting its start."""
    path = geometry.wobble(geometry.densify(outline, 0.12 * half), rng, 0.06 * half)
    path = path + np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)]) * 0.06 * half
    start = rng.randrange(len(path))
    extra = math.ceil(len(path) * rng.uniform(0.05, 0.2))
    order = [(start + k) % len(path) for k in range(len(path) + extra)]
    draw.line(_flat(path[order]), fill=ink, width=width)
