"""A reference image for the demo, drawn on the spot (no files to ship or download)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from ostaf.library.atomic import atomic_write_bytes
from ostaf.world.scenes import Scene

# An orange striped star, flat style, on a white background: a picture of the demo model's
# world, so that what an attribute tuned on it carries over shows in the demo's renders.
DEMO_SCENE = Scene(
    shape="star",
    colour="orange",
    pattern="striped",
    style="flat",
    background="white",
    centre=(0.5, 0.52),
    size=0.7,
    rotation=0.0,
    detail_seed=7,
)

# A prompt for an appearance attribute of DEMO_SCENE: 'sks' stands for its colour and pattern.
DEMO_PROMPT = "a sks heart, flat style, on a gray background"


def draw_demo_reference(size: int = 256) -> Image.Image:
    """The demo reference picture at `size`×`size` pixels."""
    return DEMO_SCENE.render(size)


def demo_reference(path: Path) -> Path:
    """Write the demo reference PNG to `path` (atomically) and return the path."""
    import io

    buffer = io.BytesIO()
    draw_demo_reference().save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path
