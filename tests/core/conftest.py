"""Core fixtures: the demo model and a tiny SDXL-shaped model on the CPU, and reference
images."""

from __future__ import annotations

import logging
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


@pytest.fixture(scope="session")
def sdxl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL-shaped model (tests/core/sdxl_tiny.py) as a diffusers folder."""
    from tests.core.sdxl_tiny import build_tiny_sdxl, write_folder

    return write_folder(build_tiny_sdxl(seed=0), tmp_path_factory.mktemp("xl") / "tiny-sdxl")


@pytest.fixture(scope="session")
def sdxl_session(sdxl_folder: Path) -> BaseModel:
    return load_base_model(sdxl_folder, device="cpu")


@pytest.fixture
def sdxl(sdxl_session: BaseModel) -> Iterator[BaseModel]:
    """The shared tiny SDXL model, with any merged attribute removed after the test."""
    sdxl_session.merger.restore()
    yield sdxl_session
    sdxl_session.merger.restore()


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


@pytest.fixture
def diffusers_warnings() -> Iterator[list[str]]:
    """Warnings diffusers logs while loading (its own logger does not propagate)."""
    import diffusers.utils.logging as diffusers_logging

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = diffusers_logging.get_logger("diffusers")
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_warning()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
    diffusers_logging.set_verbosity(level)
