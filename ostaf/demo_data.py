"""A reference image for the demo, drawn on the spot (no files to ship or download)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

from ostaf.atomic import atomic_write_bytes


def draw_demo_reference(size: int = 256) -> Image.Image:
    """An orange striped star on a pale background."""
    img = Image.new("RGB", (size, size), (236, 240, 246))
    draw = ImageDraw.Draw(img)
    cx = cy = size / 2
    outer, inner = size * 0.42, size * 0.18
    points = [
        (
            cx + (outer if i % 2 == 0 else inner) * math.sin(math.pi * i / 5),
            cy - (outer if i % 2 == 0 else inner) * math.cos(math.pi * i / 5),
        )
        for i in range(10)
    ]
    draw.polygon(points, fill=(240, 130, 30))
    stripes = Image.new("L", (size, size), 0)
    stripe_draw = ImageDraw.Draw(stripes)
    for y in range(0, size, size // 12):
        stripe_draw.rectangle((0, y, size, y + size // 24), fill=255)
    star = Image.new("L", (size, size), 0)
    ImageDraw.Draw(star).polygon(points, fill=255)
    band = Image.composite(stripes, Image.new("L", (size, size), 0), star)
    img.paste((160, 60, 10), mask=band)
    return img


def demo_reference(path: Path) -> Path:
    """Write the demo reference PNG to `path` (atomically) and return the path."""
    import io

    buffer = io.BytesIO()
    draw_demo_reference().save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path
