"""Measuring the oracle against ground truth, and contact sheets for looking at the world."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ostaf.world.degrade import Degradation, degrade
from ostaf.world.oracle import analyse
from ostaf.world.scenes import ATTRIBUTES, Split, dataset


@dataclass(frozen=True)
class OracleScore:
    """How often the oracle read each attribute right, over `count` scenes."""

    count: int
    accuracy: dict[str, float]  # per attribute, plus "all" (every attribute right at once)
    mean_shape_iou: float
    seconds_per_image: float  # analysis only, CPU time of this process


def measure_oracle(
    n: int,
    seed: int,
    size: int = 64,
    how: Degradation | None = None,
    split: Split = "any",
) -> OracleScore:
    """Render `n` scenes, degrade them with `how`, analyse them and score the oracle."""
    rng = np.random.default_rng(seed)
    hits = {name: 0 for name in (*ATTRIBUTES, "all")}
    iou_total = 0.0
    spent = 0.0
    for image, _, scene in dataset(n, seed, size, split=split):
        if how is not None:
            image = degrade(image, how, rng)
        started = time.process_time()
        analysis = analyse(image)
        spent += time.process_time() - started
        seen = analysis.attributes()
        right = {name: seen[name] == getattr(scene, name) for name in ATTRIBUTES}
        for name, ok in right.items():
            hits[name] += ok
        hits["all"] += all(right.values())
        iou_total += analysis.shape_iou
    return OracleScore(
        count=n,
        accuracy={name: count / n for name, count in hits.items()},
        mean_shape_iou=iou_total / n,
        seconds_per_image=spent / n,
    )


def contact_sheet(images: Sequence[Image.Image], columns: int = 8, zoom: int = 1) -> Image.Image:
    """The images on a grid, each enlarged `zoom`× without smoothing (to see real pixels)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    width, height = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * width * zoom, rows * height * zoom), "white")
    for index, image in enumerate(images):
        tile = image.convert("RGB").resize((width * zoom, height * zoom), Image.Resampling.NEAREST)
        sheet.paste(tile, ((index % columns) * width * zoom, (index // columns) * height * zoom))
    return sheet
