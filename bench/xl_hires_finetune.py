"""Fine-tune the shipped SDXL-shaped world model at a larger size and read its prompt
following per pattern: does the first attention at 16×16 latents (128 px) draw stripes and
checks that the 64-px model (first attention at 8×8) misses? (BENCHMARKS.md, "v2 with both
tuning seeds, against the plain LoRA, and a 128-px fine-tune".)

    python -m bench.xl_hires_finetune --work DIR [--size 128 --steps 1500 --images 20000]

Resumable: the scenes' latents and the training state are kept in DIR.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128, help="px, a multiple of 32")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=200)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from diffusers import StableDiffusionXLPipeline

    from ostaf.models.demo_model import demo_model_dir
    from ostaf.models.demo_model_xl import DEMO_XL, DEMO_XL_SEED
    from ostaf.world.checkpoint import StageCheckpoint
    from ostaf.world.oracle import analyse, attribute_matches
    from ostaf.world.prompt_following import evaluation_scenes, measure_prompt_following
    from ostaf.world.scenes import Scene, dataset
    from ostaf.world.train_denoiser import DenoiserRecipe, XlConditioner, train_denoiser
    from ostaf.world.train_vae import latent_statistics

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionXLPipeline.from_pretrained(demo_model_dir(DEMO_XL), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    latents_path = args.work / "latents.pt"
    if latents_path.is_file():
        saved = torch.load(latents_path, weights_only=False)
        means, stds = saved["means"], saved["stds"]
        scenes = [Scene(**{**s, "centre": tuple(s["centre"])}) for s in saved["scenes"]]
    else:
        log(f"drawing {args.images} scenes at {args.size} px")
        drawn = list(dataset(args.images, DEMO_XL_SEED, args.size, split="train", supersample=3))
        scenes = [scene for _, _, scene in drawn]
        pixels = torch.from_numpy(np.stack([np.asarray(image) for image, _, _ in drawn]))
        with torch.no_grad():
            means, stds = latent_statistics(pipe.vae, pixels)
        state = {"means": means, "stds": stds, "scenes": [asdict(s) for s in scenes]}
        torch.save(state, latents_path)
    pipe.unet.register_to_config(sample_size=args.size // pipe.vae_scale_factor)
    recipe = DenoiserRecipe(
        steps=args.steps, batch=16, learning_rate=args.rate, warmup=100, checkpoint_every=100
    )
    unet, encoders = train_denoiser(
        pipe.unet,
        XlConditioner(pipe, args.size),
        (means, stds),
        scenes,
        recipe,
        DEMO_XL_SEED + 40,
        StageCheckpoint(args.work / "denoiser.pt"),
        log,
    )
    pipe.unet = unet
    for name, encoder in encoders.items():
        setattr(pipe, name, encoder)
    score, images = measure_prompt_following(pipe, args.prompts)
    print(score.summary())
    asked: collections.Counter[str] = collections.Counter()
    drawn_right: collections.Counter[str] = collections.Counter()
    for image, scene in zip(images, evaluation_scenes(args.prompts), strict=True):
        asked[scene.pattern] += 1
        drawn_right[scene.pattern] += attribute_matches(analyse(image), scene)["pattern"]
    print(json.dumps({p: f"{drawn_right[p]}/{asked[p]}" for p in sorted(asked)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
