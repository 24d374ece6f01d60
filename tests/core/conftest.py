"""Core fixtures: the demo model at tiny size on the CPU, and reference images."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ostaf.models.base_model import BaseModel, load_base_model


@pytest.fixture(scope="session")
def demo() -> BaseModel:
    return load_base_model("demo", device="cpu")


@pytest.fixture
def model(demo: BaseModel) -> Iterator[BaseModel]:
    """The shared demo model, with any merged attribute removed after the test."""
    demo.merger.restore()
    yield demo
    demo.merger.restore()


def draw_reference(size: int = 96, colour: str = "red", shape: str = "circle") -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    box = (size * 0.2, size * 0.2, size * 0.8, size * 0.8)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    else:
        c, r = size / 2, size * 0.35
        draw.polygon(
            [
                (c + r * math.sin(a * math.pi / 1.5), c - r * math.cos(a * math.pi / 1.5))
                for a in range(3)
            ],
            fill=colour,
        )
    for y in range(0, size, 8):
        draw.line((0, y, size, y), fill=(200, 200, 255), width=1)
    return img


@pytest.fixture
def reference_png(tmp_path: Path) -> Path:
    path = tmp_path / "reference.png"
    draw_reference().save(path)
    return path
