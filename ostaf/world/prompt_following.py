"""How well a text-to-image model of the world follows its prompts, read by the oracle."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ostaf.models.demo_model import DEMO_GUIDANCE
from ostaf.world.oracle import analyse, attribute_matches
from ostaf.world.scenes import ATTRIBUTES, Scene, caption, sample_scene

SAMPLER_STEPS = 25
GUIDANCE = DEMO_GUIDANCE  # what the app renders the demo models at


@dataclass(frozen=True)
class PromptFollowing:
    """Share of rendered images that show what their prompt asked, per attribute and jointly."""

    count: int
    rates: dict[str, float]  # each attribute, "shape+colour", and "all" five at once
    seconds: float  # rendering and analysis

    def summary(self) -> str:
        parts = ", ".join(f"{name} {rate:.1%}" for name, rate in self.rates.items())
        return f"{self.count} prompts: {parts} ({self.seconds:.0f} s)"


def evaluation_scenes(count: int, seed: int = 123) -> list[Scene]:
    """`count` scenes, alternately from training and held-out combinations."""
    rng = random.Random(seed)
    return [sample_scene(rng, split="holdout" if i % 2 else "train") for i in range(count)]


@torch.no_grad()
def render_prompts(
    pipe: Any,
    prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int = SAMPLER_STEPS,
    guidance: float = GUIDANCE,
    batch: int = 25,
) -> list[Image.Image]:
    """One image per (prompt, seed), batched; each image depends only on its own seed."""
    images: list[Image.Image] = []
    for first in range(0, len(prompts), batch):
        chunk = list(prompts[first : first + batch])
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds[first : first + batch]]
        images += pipe(
            chunk, num_inference_steps=steps, guidance_scale=guidance, generator=generators
        ).images
    return images


def measure_prompt_following(
    pipe: Any,
    count: int = 200,
    seed: int = 123,
    steps: int = SAMPLER_STEPS,
    guidance: float = GUIDANCE,
) -> tuple[PromptFollowing, list[Image.Image]]:
    """Render the full captions of `count` scenes (with the pipeline's own scheduler) and
    score them; returns the score and the images."""
    started = time.perf_counter()
    scenes = evaluation_scenes(count, seed)
    images = render_prompts(
        pipe, [caption(s) for s in scenes], range(seed, seed + count), steps, guidance
    )
    hits = dict.fromkeys((*ATTRIBUTES, "shape+colour", "all"), 0)
    for image, scene in zip(images, scenes, strict=True):
        matches = attribute_matches(analyse(image), scene)
        for name, ok in matches.items():
            hits[name] += ok
        hits["shape+colour"] += matches["shape"] and matches["colour"]
        hits["all"] += all(matches.values())
    rates = {name: value / count for name, value in hits.items()}
    return PromptFollowing(count, rates, time.perf_counter() - started), images
