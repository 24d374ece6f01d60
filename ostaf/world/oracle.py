"""The oracle: reads shape, colour, pattern, style and background back from an image of the world.

It is deterministic hand-written analysis, no learning, so a benchmark can trust it on the
imperfect images of a small diffusion model (blurry, noisy, slightly off colours):

1. background: a plane fitted per Lab channel to the border pixels;
2. foreground: pixels far from that plane, holes filled, specks dropped;
3. shape: soft IoU of the mask, normalised by its area and centroid, against every shape's
   template at every plausible rotation;
4. colour: the palette colour whose fill, pattern tone and contour ink best explain the
   interior;
5. pattern: contrast, tone fraction and gradient coherence (local, over about a stripe's
   width, which wavy stripes keep; and of four-fold symmetry for checks) of the interior
   along the fill-to-tone axis;
6. style: how wide, solid and even the contour ink along the rim is (see `strokes`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ostaf.world import geometry, masks, palette, strokes
from ostaf.world.geometry import SHAPES, UNIT_SHAPES
from ostaf.world.scenes import COLOURS, Scene

ANALYSIS_SIZE = 64  # every image is resampled to this before analysis
TEMPLATE_GRID = 48  # template side in cells; one cell is 1/16 of √(shape area)
TEMPLATE_REACH = 1.5  # templates cover ±1.5 √(area) around the centroid
TEMPLATE_ROTATIONS = tuple(range(-35, 36, 5))
PAIR_RADIUS = 20.0  # ΔE within which a pixel counts as the fill or the tone
INK_COST = 8.0  # ΔE added when the colour vote explains a pixel as contour ink
COST_CAP = 40.0  # ΔE beyond which a pixel counts as unexplained, however far it is
# Gradient structure is pooled over this many 3×3 box passes (about 11 px at 64 px: a stripe
# period) before its local coherence is read.
LOCAL_PASSES = 5


@dataclass(frozen=True, eq=False)
class Analysis:
    """What the oracle sees in one image; each prediction has a confidence in [0, 1]."""

    shape: str | None
    shape_iou: float
    shape_confidence: float
    colour: str | None
    colour_confidence: float
    pattern: str | None
    pattern_confidence: float
    style: str | None
    style_confidence: float
    background: str | None
    background_confidence: float
    centre: tuple[float, float]  # mask centroid, fractions of the image
    coverage: float  # fraction of the image the subject covers
    rotation: float  # degrees clockwise of the best shape template
    mask: np.ndarray  # the subject's silhouette, bool (ANALYSIS_SIZE, ANALYSIS_SIZE)
    features: dict[str, float] = field(default_factory=dict)  # raw measurements

    def attributes(self) -> dict[str, str | None]:
        """The categorical predictions by attribute name."""
        return {
            "shape": self.shape,
            "colour": self.colour,
            "pattern": self.pattern,
            "style": self.style,
            "background": self.background,
        }


def attribute_matches(analysis: Analysis, expected: Scene | Mapping[str, str]) -> dict[str, bool]:
    """For each attribute named in `expected` (a scene names all five), whether it was seen."""
    wanted = expected.attributes() if isinstance(expected, Scene) else dict(expected)
    seen = analysis.attributes()
    unknown = set(wanted) - set(seen)
    if unknown:
        raise KeyError(f"not attributes of the world: {sorted(unknown)}")
    return {name: seen[name] == value for name, value in wanted.items()}


def prompt_follows(analysis: Analysis, expected: Scene | Mapping[str, str]) -> bool:
    """Whether every attribute named in `expected` was seen in the image."""
    return all(attribute_matches(analysis, expected).values())


def silhouette_iou(first: Analysis, second: Analysis) -> float:
    """IoU of two subjects' silhouettes once each is centred on its centroid and scaled to
    unit area: the same shape in the same pose scores near 1 wherever and however large it
    is drawn; a turned or different shape scores lower. 0 when either image has no subject."""
    grids = []
    for analysis in (first, second):
        area = int(analysis.mask.sum())
        if area < 16:
            return 0.0
        ys, xs = np.nonzero(analysis.mask)
        cells = ((np.arange(TEMPLATE_GRID) + 0.5) / TEMPLATE_GRID * 2 - 1) * TEMPLATE_REACH
        cells = cells * area**0.5
        grids.append(
            _bilinear(analysis.mask.astype(np.float32), ys.mean() + cells, xs.mean() + cells)
        )
    inter = float(np.minimum(*grids).sum())
    return inter / max(float(np.maximum(*grids).sum()), 1e-6)


# ---------------------------------------------------------------------------- analysis


def analyse(image: Image.Image | np.ndarray) -> Analysis:
    """Analyse an RGB image of the world (PIL image, or uint8/float array (H, W, 3))."""
    rgb = _as_rgb(image)
    lab = palette.rgb_to_lab(rgb)
    # One fit for both spaces: Lab judges distances, RGB is where blur mixes linearly.
    planes = _fit_background(np.concatenate([lab, rgb * 100.0], axis=-1))
    background_lab, background_rgb = planes[..., :3], planes[..., 3:] / 100.0
    smooth = masks.box_mean(lab)
    noise = _noise(smooth, background_lab)
    distance = np.linalg.norm(smooth - background_lab, axis=-1)
    threshold = max(8.0, 4.0 * noise)
    mask = _clean(distance > threshold)
    features: dict[str, float] = {"noise": noise, "threshold": threshold}
    background, background_confidence = _background_name(background_lab)
    area = int(mask.sum())
    if area < 16:
        return Analysis(
            None, 0.0, 0.0, None, 0.0, None, 0.0, None, 0.0, background,
            background_confidence, (0.5, 0.5), 0.0, 0.0, mask, features,
        )  # fmt: skip

    ys, xs = np.nonzero(mask)
    centre = (float(xs.mean()), float(ys.mean()))
    shape, iou, shape_confidence, rotation = _classify_shape(mask, centre, area)
    features["shape_iou"] = iou

    not_background = np.linalg.norm(lab - background_lab, axis=-1) > threshold
    interior = _interior(mask, area) & not_background
    if interior.sum() < 8:
        interior = mask & not_background
    colour, colour_confidence = _classify_colour(lab[interior])
    pair = _observed_pair(lab[interior], rgb[interior], colour)
    tone_rgb = pair.tone_rgb if pair.tone_seen else None
    # Ink only matters on the subject: unmixing the mask's pixels alone saves most of the work.
    evidence = np.zeros(mask.shape, dtype=np.float32)
    evidence[mask] = strokes.ink_evidence(
        rgb[mask], background_rgb[mask], pair.fill_rgb, tone_rgb, colour
    )
    # Contour ink, and background showing through (sketchy gaps), are not the pattern.
    pattern_pixels = (
        interior
        & ~masks.dilate(masks.box_mean(evidence) > 0.12)
        & ~masks.dilate(mask & ~not_background)
    )
    pattern, pattern_confidence = _classify_pattern(
        lab, pattern_pixels, pair.fill_lab, pair.tone_lab, features
    )
    style, style_confidence = strokes.classify_style(evidence, mask, centre, shape, features)
    size = ANALYSIS_SIZE
    return Analysis(
        shape, iou, shape_confidence, colour, colour_confidence, pattern, pattern_confidence,
        style, style_confidence, background, background_confidence,
        (centre[0] / size, centre[1] / size), area / size**2, rotation, mask, features,
    )  # fmt: skip


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] at the analysis size."""
    if isinstance(image, np.ndarray):
        array = image.astype(np.float32)
        if array.max() > 1.0:
            array /= 255.0
        image = Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8))
    image = image.convert("RGB")
    if image.size != (ANALYSIS_SIZE, ANALYSIS_SIZE):
        smaller = image.width < ANALYSIS_SIZE
        resample = Image.Resampling.BILINEAR if smaller else Image.Resampling.BOX
        image = image.resize((ANALYSIS_SIZE, ANALYSIS_SIZE), resample)
    return np.asarray(image, dtype=np.float32) / 255.0


@functools.cache
def _plane_design(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares design (1, x, y) of every pixel, and the two-pixel border mask."""
    ys, xs = np.mgrid[0:h, 0:w]
    design = np.stack([np.ones(h * w), xs.ravel() / w - 0.5, ys.ravel() / h - 0.5], axis=1)
    border = np.zeros((h, w), dtype=bool)
    border[:2, :] = border[-2:, :] = border[:, :2] = border[:, -2:] = True
    return design, border


def _fit_background(values: np.ndarray) -> np.ndarray:
    """A plane per channel through the two-pixel border, refitted without outliers (a
    subject touching the border), evaluated over the whole image."""
    h, w, channels = values.shape
    design, border = _plane_design(h, w)
    rows = design[border.ravel()]
    seen = values[border]
    keep = np.ones(len(seen), dtype=bool)
    for _ in range(2):
        kept = rows[keep]
        coef = np.linalg.solve(kept.T @ kept, kept.T @ seen[keep])
        residual = np.linalg.norm(rows @ coef - seen, axis=1)
        keep = residual <= max(2.5 * float(np.median(residual)), 1e-6)
    return (design @ coef).reshape(h, w, channels).astype(np.float32)


def _noise(smooth: np.ndarray, plane: np.ndarray) -> float:
    """Typical distance of the (smoothed) border from the fitted background plane."""
    _, border = _plane_design(*plane.shape[:2])
    return float(np.median(np.linalg.norm(smooth[border] - plane[border], axis=1)))


def _clean(raw: np.ndarray) -> np.ndarray:
    """Fill holes and keep what is connected to the subject's bulk (drops noise specks)."""
    filled = masks.fill_holes(raw)
    bulk = masks.erode(masks.erode(filled))
    if not bulk.any():
        return filled
    return masks.reconstruct(bulk, filled)


def _interior(mask: np.ndarray, area: int) -> np.ndarray:
    """The mask without its rim, where contours and anti-aliasing live."""
    rim = int(np.clip(round(0.12 * area**0.5), 2, 5))
    return masks.depth(mask, rim + 1) > rim


def _background_name(plane: np.ndarray) -> tuple[str, float]:
    """The named background nearest to the fitted plane near the top and the bottom."""
    h, w = plane.shape[:2]
    seen = np.concatenate([plane[h // 8, w // 2], plane[h - 1 - h // 8, w // 2]])
    distances = {}
    for name, (top, bottom) in palette.BACKGROUNDS.items():
        expected = np.concatenate([palette.lab_of(top), palette.lab_of(bottom)])
        distances[name] = float(np.linalg.norm(seen - expected))
    return _nearest(distances)


def _nearest(distances: dict[str, float]) -> tuple[str, float]:
    """The closest name, and a confidence from how much closer it is than the runner-up."""
    ranked = sorted(distances, key=distances.__getitem__)
    best, second = distances[ranked[0]], distances[ranked[1]]
    return ranked[0], float(1.0 - best / max(second, 1e-6))


# ---------------------------------------------------------------------------- shape


@functools.cache
def _templates() -> tuple[np.ndarray, tuple[tuple[str, int], ...]]:
    """Coverage images (n, grid²) of every shape at every rotation, normalised to unit area
    and centred on their centroid, and the (shape, rotation) of each row."""
    grid, reach, scale = TEMPLATE_GRID, TEMPLATE_REACH, 4
    rows, labels = [], []
    for shape in SHAPES:
        for degrees in TEMPLATE_ROTATIONS:
            points = geometry.place(UNIT_SHAPES[shape], (0.0, 0.0), 1.0, degrees)
            area, centroid = geometry.polygon_area_centroid(points)
            unit = (points - centroid) / area**0.5
            pixels = (unit + reach) / (2 * reach) * grid * scale
            canvas = Image.new("L", (grid * scale, grid * scale), 0)
            ImageDraw.Draw(canvas).polygon(pixels.ravel().tolist(), fill=255)
            rows.append(np.asarray(canvas.reduce(scale), dtype=np.float32).ravel() / 255.0)
            labels.append((shape, degrees))
    return np.stack(rows), tuple(labels)


@functools.cache
def _template_areas() -> np.ndarray:
    return _templates()[0].sum(axis=1)


def _classify_shape(
    mask: np.ndarray, centre: tuple[float, float], area: int
) -> tuple[str, float, float, float]:
    """Best shape, its IoU, the IoU margin over the best other shape, and its rotation."""
    templates, labels = _templates()
    grid, reach = TEMPLATE_GRID, TEMPLATE_REACH
    # Template cell centres, mapped into the image by the mask's centroid and √area.
    cells = ((np.arange(grid) + 0.5) / grid * 2 - 1) * reach * area**0.5
    sampled = _bilinear(mask.astype(np.float32), centre[1] + cells, centre[0] + cells).ravel()
    inter = np.minimum(templates, sampled).sum(axis=1)
    # max(a, b) = a + b − min(a, b), so the union needs no second pass.
    union = _template_areas() + sampled.sum() - inter
    iou = inter / np.maximum(union, 1e-6)
    per_shape = {shape: -1.0 for shape in SHAPES}  # below any IoU: every shape gets a row
    best_row = {}
    for row, (shape, _) in enumerate(labels):
        if iou[row] > per_shape[shape]:
            per_shape[shape], best_row[shape] = float(iou[row]), row
    ranked = sorted(per_shape, key=per_shape.__getitem__, reverse=True)
    best = ranked[0]
    margin = per_shape[best] - per_shape[ranked[1]]
    return best, per_shape[best], float(np.clip(margin * 5, 0, 1)), float(labels[best_row[best]][1])


def _bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`image` sampled on the grid rows × cols (pixel-centre coordinates); 0 outside."""
    padded = np.pad(image, 1)
    r = np.clip(rows - 0.5 + 1, 0, padded.shape[0] - 1.001)
    c = np.clip(cols - 0.5 + 1, 0, padded.shape[1] - 1.001)
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    fr, fc = (r - r0)[:, None], (c - c0)[None, :]
    top = padded[r0][:, c0] * (1 - fc) + padded[r0][:, c0 + 1] * fc
    bottom = padded[r0 + 1][:, c0] * (1 - fc) + padded[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


# ---------------------------------------------------------------------------- colour


@functools.cache
def _pair_labs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Lab of every colour's fill and pattern tone."""
    return {
        c: (palette.lab_of(palette.COLOURS[c]), palette.lab_of(palette.tone_of(c))) for c in COLOURS
    }


@functools.cache
def _colour_references() -> tuple[np.ndarray, np.ndarray]:
    """Lab of every colour's fill, tone and ink (n, 3, 3), and the extra cost of each."""
    references = np.stack(
        [np.stack([*_pair_labs()[c], palette.lab_of(palette.ink_of(c))]) for c in COLOURS]
    )
    return references.astype(np.float32), np.array([0.0, 0.0, INK_COST], dtype=np.float32)


def _classify_colour(pixels: np.ndarray) -> tuple[str, float]:
    """The colour that best explains the interior pixels as its fill, its tone or, at a small
    extra cost, its contour ink (thick contours reach far into small shapes)."""
    references, extra = _colour_references()
    # (pixels, colours, fill/tone/ink) distances, then each pixel's cheapest explanation.
    distances = np.linalg.norm(pixels[:, None, None, :] - references[None], axis=-1) + extra
    costs = np.minimum(distances.min(axis=2), COST_CAP).mean(axis=0)
    return _nearest(dict(zip(COLOURS, costs.tolist(), strict=True)))


@dataclass(frozen=True)
class _Pair:
    """The subject's fill and pattern tone as they appear in this image."""

    fill_lab: np.ndarray
    tone_lab: np.ndarray
    fill_rgb: np.ndarray
    tone_rgb: np.ndarray
    tone_seen: bool  # enough tone pixels to call the subject patterned at all


def _observed_pair(lab_pixels: np.ndarray, rgb_pixels: np.ndarray, colour: str) -> _Pair:
    """Fill and tone as seen (shifted by any colour cast); the palette's values where too few
    pixels are close enough to tell (the tone of a plain subject)."""
    found = []
    for name, expected in zip(("fill", "tone"), _pair_labs()[colour], strict=True):
        near = np.linalg.norm(lab_pixels - expected, axis=1) < PAIR_RADIUS
        enough = near.sum() >= 0.05 * len(lab_pixels) + 4
        rgb = palette.tone_of(colour) if name == "tone" else palette.COLOURS[colour]
        found.append(
            (
                np.median(lab_pixels[near], axis=0) if enough else expected,
                np.median(rgb_pixels[near], axis=0) if enough else np.array(rgb) / 255.0,
                enough,
            )
        )
    (fill_lab, fill_rgb, _), (tone_lab, tone_rgb, tone_seen) = found
    return _Pair(
        fill_lab.astype(np.float32), tone_lab.astype(np.float32),
        fill_rgb.astype(np.float32), tone_rgb.astype(np.float32), bool(tone_seen),
    )  # fmt: skip


# ---------------------------------------------------------------------------- pattern


def _classify_pattern(
    lab: np.ndarray,
    candidates: np.ndarray,
    fill: np.ndarray,
    tone: np.ndarray,
    features: dict[str, float],
) -> tuple[str, float]:
    """Plain, striped, dotted or checkered, from the interior seen along the fill→tone axis."""
    axis = tone - fill
    # 0 at the fill colour, 1 at the tone: the pattern as a one-channel image.
    along = ((lab - fill) @ axis) / max(float(axis @ axis), 1e-6)
    off_axis = np.linalg.norm(lab - fill - along[..., None] * axis, axis=-1)
    # Only pixels on the fill–tone segment (and blends of the two) carry the pattern;
    # contour ink and its blends with the fill lie off it.
    region = candidates & (off_axis < PAIR_RADIUS) & (along > -0.35) & (along < 1.35)
    if region.sum() < 8:
        features.update(pattern_contrast=0.0, pattern_toned=0.0, pattern_local_coherence=0.0)
        return "plain", 0.0
    smooth = masks.box_mean(along)
    values = smooth[region]
    contrast = float(np.percentile(values, 95) - np.percentile(values, 5))
    toned = float((values > 0.5).mean())
    gy, gx = np.gradient(smooth)
    inner = masks.erode(region)
    local = _local_coherence(gx, gy, inner)
    gx, gy = gx[inner], gy[inner]
    energy = max(float((gx * gx + gy * gy).sum()), 1e-9)
    # Gradient directions as vectors at four times their angle, summed over the subject:
    # checks have two perpendicular edge directions (the sum stays long), dots every
    # direction (it cancels).
    cos2, sin2 = gx * gx - gy * gy, 2 * gx * gy
    magnitude = np.maximum(gx * gx + gy * gy, 1e-12)
    cos4, sin4 = (cos2 * cos2 - sin2 * sin2) / magnitude, 2 * cos2 * sin2 / magnitude
    coherence4 = float(np.hypot(cos4.sum(), sin4.sum())) / energy
    features.update(
        pattern_contrast=contrast, pattern_toned=toned, pattern_local_coherence=local,
        pattern_coherence4=coherence4,
    )  # fmt: skip
    # Linear scores with weights and cut points read off the feature distributions of 300
    # scenes per degradation (clean, blur, noise, colour jitter, JPEG); the stripe test off
    # those and the demo model's own pictures labelled by eye (tests/data/generated_patterns),
    # whose stripes are often wavy: one edge direction at each place, not across the shape.
    patterned = contrast + 1.5 * toned - 0.6
    if patterned < 0:
        return "plain", float(np.clip(-patterned / 0.3, 0, 1))
    lined = local - 0.72
    if lined >= 0:
        return "striped", float(np.clip(min(patterned / 0.3, lined / 0.2), 0, 1))
    checked = toned + 0.7 * coherence4 - 0.62
    confidence = min(patterned / 0.3, -lined / 0.2, abs(checked) / 0.2)
    return ("checkered" if checked >= 0 else "dotted"), float(np.clip(confidence, 0, 1))


def _local_coherence(gx: np.ndarray, gy: np.ndarray, inner: np.ndarray) -> float:
    """How one-directional the gradient (`gx`, `gy`) is within a stripe's width, weighted by
    edge energy over `inner`: near 1 for stripes, straight or wavy; lower for checks (two
    directions) and dots (every direction)."""
    xx, yy, xy = gx * gx, gy * gy, gx * gy
    for _ in range(LOCAL_PASSES):
        xx, yy, xy = masks.box_mean(xx), masks.box_mean(yy), masks.box_mean(xy)
    weight = inner.astype(np.float32)
    directed = float((np.sqrt((xx - yy) ** 2 + 4 * xy * xy) * weight).sum())
    return directed / max(float(((xx + yy) * weight).sum()), 1e-9)
