"""A small procedural world of captioned shapes in which OSTAF's effect is measurable on a CPU.

`scenes` samples, splits and captions scenes, `drawing` renders them, `oracle` reads the
attributes back from any image of this world (including a small diffusion model's imperfect
ones), `degrade` imitates such imperfections and `evaluate` scores the oracle.

`train` trains the demo model on the world (`train_vae`, `train_denoiser`, `checkpoint`),
`prompt_following` scores how well a model follows prompts, and `attribute_bench` measures
what OSTAF transfers (`attribute_cases`, `attribute_report`, `plain_lora`).
"""

from ostaf.world.oracle import Analysis, analyse, attribute_matches, prompt_follows
from ostaf.world.scenes import (
    ATTRIBUTES,
    BACKGROUNDS,
    COLOURS,
    PATTERNS,
    SHAPES,
    STYLES,
    WORLD_WORDS,
    Scene,
    caption,
    dataset,
    holdout_combos,
    is_holdout,
    render,
    sample_scene,
    world_words,
)

__all__ = [
    "ATTRIBUTES",
    "BACKGROUNDS",
    "COLOURS",
    "PATTERNS",
    "SHAPES",
    "STYLES",
    "WORLD_WORDS",
    "Analysis",
    "Scene",
    "analyse",
    "attribute_matches",
    "caption",
    "dataset",
    "holdout_combos",
    "is_holdout",
    "prompt_follows",
    "render",
    "sample_scene",
    "world_words",
]
