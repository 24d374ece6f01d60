"""Degradations that imitate a small diffusion model's output: blur, noise, colour cast, JPEG.

The oracle's accuracy is measured on images passed through these, so a benchmark knows how
far to trust it on generated images.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class Degradation:
    """How much of each defect to apply; zero (or None) leaves that defect out."""

    blur: float = 0.0  # Gaussian blur radius (standard deviation) in pixels of a 64 px image
    noise: float = 0.0  # standard deviation of additive Gaussian noise, RGB in [0, 1]
    jitter: float = 0.0  # per-channel gain in 1 ± jitter, plus a brightness shift of ± jitter/2
    jpeg_quality: int | None = None  # re-encode as JPEG (4:2:0 chroma) at this quality


CONDITIONS: dict[str, Degradation] = {
    "clean": Degradation(),
    "blur": Degradation(blur=1.0),
    "noise": Degradation(noise=0.05),
    "jitter": Degradation(jitter=0.06),
    "jpeg": Degradation(jpeg_quality=50),
    "all": Degradation(blur=1.0, noise=0.05, jitter=0.06, jpeg_quality=50),
}


def degrade(image: Image.Image, how: Degradation, rng: np.random.Generator) -> Image.Image:
    """`image` with the defects in `how`; the blur radius scales with the image's size."""
    out = image.convert("RGB")
    if how.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(how.blur * out.width / 64))
    if how.noise > 0 or how.jitter > 0:
        pixels = np.asarray(out, dtype=np.float32) / 255.0
        if how.jitter > 0:
            gain = rng.uniform(1 - how.jitter, 1 + how.jitter, size=3)
            pixels = pixels * gain + rng.uniform(-how.jitter / 2, how.jitter / 2)
        if how.noise > 0:
            pixels = pixels + rng.normal(0.0, how.noise, size=pixels.shape)
        out = Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))
    if how.jpeg_quality is not None:
        buffer = io.BytesIO()
        out.save(buffer, format="JPEG", quality=how.jpeg_quality)
        out = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return out
