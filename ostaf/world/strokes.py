"""The oracle's reading of drawing style: how much contour ink lies along the rim, and how.

Flat subjects have none; outline subjects a wide, solid, even band; sketchy subjects thin
strokes that wander in and out. Ink is measured by unmixing each pixel, which keeps the
measure honest under blur (blur moves ink around but keeps its amount).
"""

from __future__ import annotations

import functools

import numpy as np

from ostaf.world import geometry, masks, palette
from ostaf.world.geometry import UNIT_SHAPES

RIDGE = 1e-3  # keeps unmixing stable when background, subject and ink are nearly collinear
TIE = 0.03  # RGB residuals closer than this count as equally good fits
SECTORS = 32  # angular sectors around the centroid for the evenness of the contour


def ink_evidence(
    rgb: np.ndarray,
    background: np.ndarray,
    fill: np.ndarray,
    tone: np.ndarray | None,
    colour: str,
) -> np.ndarray:
    """Per pixel, the share of contour ink in it (unclipped, so that averages stay unbiased
    under noise). `rgb` and `background` are pixels (..., 3) in [0, 1]; `tone` is None for a
    subject with no pattern.

    Blur mixes colours linearly, so each pixel is unmixed by least squares into a base
    colour plus two others, one of them the ink: background + fill + ink, and for patterned
    subjects also background + tone + ink and fill + tone + ink. The best fit wins; on a
    near tie the smallest ink share does, since a dark tone is itself "fill plus some
    black" and must not read as ink. Where the background is as dark as the ink, no ink
    can be seen at all.
    """
    ink = np.array(palette.ink_of(colour), dtype=np.float32) / 255.0
    fits = [_unmix(rgb, background, fill, ink)]
    if tone is not None:
        fits.append(_unmix(rgb, background, tone, ink))
        fits.append(_unmix(rgb, np.broadcast_to(fill, rgb.shape), tone, ink))
    shares = np.stack([share for share, _ in fits])
    residuals = np.stack([residual for _, residual in fits])
    candidate = residuals <= residuals.min(axis=0) + TIE
    best = np.where(candidate, np.abs(shares), np.inf).argmin(axis=0)
    chosen = np.take_along_axis(shares, best[None], axis=0)[0]
    visible = np.clip((np.linalg.norm(ink - background, axis=-1) - 0.08) / 0.12, 0.0, 1.0)
    return chosen * visible


def _unmix(
    rgb: np.ndarray, base: np.ndarray, subject: np.ndarray, ink: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ink weight v, and the fit's residual, in
    pixel ≈ base + u·(subject − base) + v·(ink − base)."""
    d = rgb - base
    a = subject - base
    b = ink - base
    aa = (a * a).sum(-1) + RIDGE
    bb = (b * b).sum(-1) + RIDGE
    ab = (a * b).sum(-1)
    ad, bd = (a * d).sum(-1), (b * d).sum(-1)
    det = aa * bb - ab * ab
    u = (bb * ad - ab * bd) / det
    v = (aa * bd - ab * ad) / det
    residual = np.linalg.norm(d - u[..., None] * a - v[..., None] * b, axis=-1)
    return v, residual


@functools.cache
def _unit_measures() -> dict[str, tuple[float, float]]:
    """(area, perimeter) of every unit shape."""
    out = {}
    for shape, points in UNIT_SHAPES.items():
        area, _ = geometry.polygon_area_centroid(points)
        perimeter = float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())
        out[shape] = (area, perimeter)
    return out


def classify_style(
    evidence: np.ndarray,
    mask: np.ndarray,
    centre: tuple[float, float],
    shape: str,
    features: dict[str, float],
) -> tuple[str, float]:
    """Flat, outline or sketchy, and a confidence; the measurements go into `features`."""
    rings = masks.depth(mask, 10)
    unit_area, unit_perimeter = _unit_measures()[shape]
    half = (mask.sum() / unit_area) ** 0.5  # pixels per unit-shape coordinate
    # Total ink over the rim divided by the rim's length is the stroke width (in unit-shape
    # coordinates), whatever the blur.
    rim = (rings >= 1) & (rings <= max(3, round(0.35 * half)))
    ink_width = float(evidence[rim].sum()) / (unit_perimeter * half * half)
    # A solid band shows as one ring of the mask that is ink almost everywhere.
    ring_max = max(
        float(np.clip(evidence[rings == k].mean(), 0, 1)) for k in range(1, 7) if (rings == k).any()
    )
    # Wandering strokes are dark in some directions from the centroid and faint in others.
    ys, xs = np.nonzero(rim)
    angle = np.arctan2(ys - centre[1], xs - centre[0])
    sector = ((angle / (2 * np.pi) + 0.5) * SECTORS).astype(int) % SECTORS
    peaks = np.zeros(SECTORS)
    np.maximum.at(peaks, sector, np.clip(masks.box_mean(evidence)[ys, xs], 0, 1))
    spread = float(peaks.std())
    features.update(ink_width=ink_width, ring_max=ring_max, peak_spread=spread)
    # Linear scores with weights and cut points read off the feature distributions of 300
    # scenes per degradation (clean, blur, noise, colour jitter, JPEG): any ink at all,
    # then a wide solid even band (outline) rather than thin wandering strokes (sketchy).
    any_ink = ink_width + 0.2 * spread - 0.04
    if any_ink < 0:
        return "flat", float(np.clip(-any_ink / 0.02, 0, 1))
    solid = ink_width + 0.4 * ring_max - spread - 0.30
    if solid >= 0:
        return "outline", float(np.clip(solid / 0.1, 0, 1))
    return "sketchy", float(np.clip(min(any_ink / 0.02, -solid / 0.1), 0, 1))
