"""Colours of the synthetic world: subject colours, pattern tones, ink and backgrounds.

Every colour the renderer paints comes from here, and so does the oracle's knowledge of
them, so the two cannot drift apart. Colours are sRGB 0..255 tuples; comparisons use
CIE Lab (ΔE 1976), which is close enough to perception for a palette this coarse.
"""

from __future__ import annotations

import functools

import numpy as np

RGB = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "red": (215, 35, 35),
    "green": (40, 160, 60),
    "blue": (30, 95, 225),
    "yellow": (240, 205, 30),
    "purple": (150, 45, 165),
    "orange": (240, 135, 25),
    "black": (25, 25, 25),
    "white": (245, 245, 245),
}

# name -> (top colour, bottom colour); equal ends are plain backgrounds, which the renderer
# still tilts by a few levels so that no two images share a background exactly.
BACKGROUNDS: dict[str, tuple[RGB, RGB]] = {
    "white": ((250, 250, 247), (250, 250, 247)),
    "cream": ((242, 228, 196), (242, 228, 196)),
    "gray": ((150, 150, 150), (150, 150, 150)),
    "black": ((22, 22, 24), (22, 22, 24)),
    "sky": ((140, 185, 235), (215, 230, 245)),
    "navy": ((28, 38, 92), (28, 38, 92)),
    "teal": ((40, 125, 130), (40, 125, 130)),
}

DARK_INK: RGB = (20, 20, 24)
LIGHT_INK: RGB = (238, 238, 238)

# Contrast rules (ΔE76) that make every attribute recoverable from the pixels: the subject
# must stand out from the background, pattern tones must not vanish into it (stripes that
# reach the edge would notch the silhouette), and contours must be visible against it.
MIN_SUBJECT_CONTRAST = 35.0
MIN_TONE_CONTRAST = 22.0
MIN_INK_CONTRAST = 40.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (any shape ending in 3) to CIE Lab under D65."""
    rgb = np.asarray(rgb, dtype=np.float32)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    eps = (6.0 / 29.0) ** 3
    f = np.where(xyz > eps, np.cbrt(np.maximum(xyz, eps)), xyz / (3 * (6.0 / 29.0) ** 2) + 4 / 29)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1).astype(np.float32)


_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
    dtype=np.float32,
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)


@functools.cache
def lab_of(rgb: RGB) -> np.ndarray:
    """Lab of one 0..255 colour (a cached array: do not modify it)."""
    return rgb_to_lab(np.array(rgb, dtype=np.float32) / 255.0)


def delta_e(first: RGB, second: RGB) -> float:
    """ΔE76 between two 0..255 colours."""
    return float(np.linalg.norm(lab_of(first) - lab_of(second)))


def mix(colour: RGB, other: RGB, amount: float) -> RGB:
    """`colour` moved `amount` of the way towards `other`."""
    return tuple(round(c + (o - c) * amount) for c, o in zip(colour, other, strict=True))  # type: ignore[return-value]


@functools.cache
def tone_of(colour: str) -> RGB:
    """The second tone of a patterned subject: a tint of dark colours, a shade of light ones."""
    rgb = COLOURS[colour]
    if colour == "black":
        # A lighter gray would be too close to a gray background.
        return mix(rgb, (255, 255, 255), 0.3)
    if lab_of(rgb)[0] < 60.0:
        return mix(rgb, (255, 255, 255), 0.55)
    return mix(rgb, (0, 0, 0), 0.45)


def ink_of(colour: str) -> RGB:
    """Contour colour for the outline and sketchy styles: dark, except on black subjects."""
    return LIGHT_INK if colour == "black" else DARK_INK


@functools.cache
def background_allowed(background: str, colour: str, pattern: str, style: str) -> bool:
    """Whether the subject stays recoverable on `background` (the contrast rules above)."""
    ends = BACKGROUNDS[background]
    for end in ends:
        if delta_e(end, COLOURS[colour]) < MIN_SUBJECT_CONTRAST:
            return False
        if pattern != "plain" and delta_e(end, tone_of(colour)) < MIN_TONE_CONTRAST:
            return False
        if style != "flat" and delta_e(end, ink_of(colour)) < MIN_INK_CONTRAST:
            return False
    return True
