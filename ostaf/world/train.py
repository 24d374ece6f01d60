"""Train a demo model on the world from a seed: `python -m ostaf.world.train --out DIR`
(the SD 1.x-shaped demo model) or `… --model demo-xl --out DIR` (the SDXL-shaped one).

Stages, each saved in the work folder so that a stopped run resumes where it was:
1. data: render the training scenes (held-out combinations never appear);
2. vae: train the AutoencoderKL on crops, then centre and scale its latents (demo-xl takes
   the first demo model's trained VAE instead: stages 2 and 4 are skipped);
3. latents: encode every training image once;
4. decoder: fine-tune the decoder on whole images (the encoder, so the latents, stay);
5. denoiser: train the U-Net and the CLIP text encoder(s) together;
6. write the diffusers folder and measure how well it follows prompts (the oracle).
Same seed, thread count and library versions give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ostaf.world.scenes import Scene

DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights, besides the seed."""

    images: int = 40_000
    vae: Any = None  # VaeRecipe; filled in by `default_recipe` so importing stays light
    decoder: Any = None  # DecoderRecipe
    denoiser: Any = None  # DenoiserRecipe
    evaluation_prompts: int = 200


DEMO, DEMO_XL = "demo", "demo-xl"
# The XL model's U-Net costs about 2.6 times the first one's per step (measured on this CPU):
# half the batch keeps its training within three hours on two cores (2 h 57 min for both
# cycles). After the first 9,000 steps (world-xl-v1), a second cosine cycle of 4,500 steps
# (v2): the first cycle's loss was still falling, and v2 lifted every kind's benchmark
# figure (BENCHMARKS.md, "A second training cycle").
XL_DENOISER_STEPS = 13_500
XL_DENOISER_BATCH = 16
XL_RESTART_AT = 9_000
XL_RESTART_RATE = 4e-4


def default_recipe(quick: bool = False, model: str = DEMO) -> Recipe:
    """The recipe of a shipped model, or a few-minute smoke-test version of it."""
    from ostaf.world.train_denoiser import DenoiserRecipe
    from ostaf.world.train_vae import DecoderRecipe, VaeRecipe

    denoiser = (
        DenoiserRecipe(
            steps=XL_DENOISER_STEPS,
            batch=XL_DENOISER_BATCH,
            restart_at=XL_RESTART_AT,
            restart_rate=XL_RESTART_RATE,
        )
        if model == DEMO_XL
        else DenoiserRecipe()
    )
    recipe = Recipe(vae=VaeRecipe(), decoder=DecoderRecipe(), denoiser=denoiser)
    if quick:
        recipe = replace(
            recipe,
            images=2_000,
            vae=replace(recipe.vae, steps=200, checkpoint_every=100),
            decoder=replace(recipe.decoder, steps=50, checkpoint_every=50),
            denoiser=replace(
                recipe.denoiser,
                steps=200,
                checkpoint_every=100,
                restart_at=100 if recipe.denoiser.restart_at else 0,
            ),
            evaluation_prompts=40,
        )
    return recipe


class Run:
    """One training run: its work folder, its log and its stage timings."""

    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.seed = seed
        work.mkdir(parents=True, exist_ok=True)
        self.timings_path = work / "timings.json"
        # Per stage: wall seconds, and CPU seconds of all threads (on a busy machine the
        # wall time says more about the neighbours than about the recipe).
        self.timings: dict[str, dict[str, float]] = (
            json.loads(self.timings_path.read_text()) if self.timings_path.is_file() else {}
        )

    def log(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, file=sys.stderr, flush=True)
        with open(self.work / "train.log", "a") as handle:
            handle.write(line + "\n")

    def stage_log(self, stage: str) -> Callable[[str], None]:
        """A log for a resumable stage: every message (sent after each save) also books the
        time since the previous one, so an interrupted run loses only unsaved work's time."""
        clock = [self.start()]

        def log(message: str) -> None:
            self.timed(stage, clock[0])
            clock[0] = self.start()
            self.log(message)

        return log

    def start(self) -> tuple[float, float]:
        """The wall and CPU clocks now, for `timed`."""
        return time.perf_counter(), time.process_time()

    def timed(self, stage: str, started: tuple[float, float]) -> None:
        """Add the wall and CPU time since `started` to `stage` (resumed stages add up)."""
        spent = self.timings.setdefault(stage, {"wall": 0.0, "cpu": 0.0})
        spent["wall"] = round(spent["wall"] + time.perf_counter() - started[0], 1)
        spent["cpu"] = round(spent["cpu"] + time.process_time() - started[1], 1)
        self.timings_path.write_text(json.dumps(self.timings, indent=2) + "\n")


def training_data(run: Run, count: int, size: int = 64) -> tuple[np.ndarray, list[Scene]]:
    """The training images (N, size, size, 3) uint8 and their scenes, rendered once and
    cached."""
    from ostaf.world.scenes import dataset

    images_path, scenes_path = run.work / "images.npy", run.work / "scenes.json"
    if images_path.is_file() and scenes_path.is_file():
        scenes = [_scene_from_json(s) for s in json.loads(scenes_path.read_text())]
        images = np.load(images_path)
        if len(scenes) == count and images.shape[1] == size:
            return images, scenes
    started = run.start()
    run.log(f"data: rendering {count} training scenes")
    images, scenes = [], []
    for image, _, scene in dataset(count, run.seed, size, split="train", supersample=3):
        images.append(np.asarray(image))
        scenes.append(scene)
    array = np.stack(images)
    np.save(images_path.with_suffix(".tmp.npy"), array)
    os.replace(images_path.with_suffix(".tmp.npy"), images_path)
    scenes_path.write_text(json.dumps([asdict(s) for s in scenes]))
    run.timed("data", started)
    return array, scenes


def _scene_from_json(data: dict[str, Any]) -> Scene:
    data = dict(data)
    data["centre"] = tuple(data["centre"])
    return Scene(**data)


def train(
    out: Path,
    work: Path,
    seed: int,
    recipe: Recipe,
    model: str = DEMO,
    size: int = 64,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run every stage (resuming what is saved in `work`) and write the model to `out`.
    `size` (the SDXL-shaped model only) is the picture size it is trained and rendered at;
    on another `device` the denoiser trains, and the model is scored, there."""
    import torch

    from ostaf.errors import SettingsError
    from ostaf.world.checkpoint import StageCheckpoint
    from ostaf.world.train_denoiser import SdConditioner, XlConditioner, train_denoiser

    run = Run(work, seed)
    if size != 64 and model != DEMO_XL:
        raise SettingsError(f"--size {size}: only the SDXL-shaped model (demo-xl) takes a size")
    threads = torch.get_num_threads()
    run.log(f"training {model}: seed {seed}, {size} px, on {device}, {threads} threads")
    images, scenes = training_data(run, recipe.images, size)
    pixels = torch.from_numpy(images)
    if model == DEMO_XL:
        from ostaf.models.demo_model_xl import (
            DEMO_XL_ARCHITECTURE,
            build_demo_xl_pipeline,
            demo_xl_vae,
        )

        vae = demo_xl_vae().eval().requires_grad_(False).to(device)
        latents = _cached_latents(run, pixels, vae)
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        architecture = replace(DEMO_XL_ARCHITECTURE, latent_size=size // factor)
        pipe = build_demo_xl_pipeline(vae.cpu(), seed, architecture)
        conditioner: Any = XlConditioner(pipe, images.shape[1])
    else:
        from ostaf.models.demo_model import build_demo_pipeline

        pipe = build_demo_pipeline(seed)
        latents = _trained_vae_latents(run, pixels, pipe.vae, recipe, seed)
        conditioner = SdConditioner(pipe.tokenizer, pipe.text_encoder)
    unet, encoders = train_denoiser(
        pipe.unet,
        conditioner,
        latents,
        scenes,
        recipe.denoiser,
        seed + 20,
        StageCheckpoint(work / "denoiser.pt"),
        run.stage_log("denoiser"),
        torch.device(device),
    )
    pipe.unet = unet.cpu()
    for name, encoder in encoders.items():
        setattr(pipe, name, encoder.cpu())
    return write_model(pipe, out, seed, recipe, run, model, device)


def _trained_vae_latents(
    run: Run, pixels: Any, vae: Any, recipe: Recipe, seed: int
) -> tuple[Any, Any]:
    """Train the first demo model's VAE (stages 2–4); returns the latents' means and stds."""
    import torch

    from ostaf.world.checkpoint import StageCheckpoint
    from ostaf.world.train_vae import (
        finetune_decoder,
        latent_statistics,
        normalise_latents,
        train_vae,
    )

    latents_path = run.work / "latents.pt"
    if latents_path.is_file():
        saved = torch.load(latents_path, weights_only=True)
        vae.load_state_dict(saved["vae"])
        means, stds = saved["means"], saved["stds"]
    else:
        vae_state = StageCheckpoint(run.work / "vae.pt")
        train_vae(vae, pixels, recipe.vae, seed + 10, vae_state, run.stage_log("vae"))
        started = run.start()
        means, stds = normalise_latents(vae, *latent_statistics(vae, pixels))
        torch.save({"vae": vae.state_dict(), "means": means, "stds": stds}, latents_path)
        run.timed("latents", started)
    # The encoder is final from here on: the latents above stay valid for the denoiser.
    finetune_decoder(
        vae,
        pixels,
        recipe.decoder,
        recipe.vae,
        seed + 30,
        StageCheckpoint(run.work / "decoder.pt"),
        run.stage_log("decoder"),
    )
    vae.eval().requires_grad_(False)
    return means, stds


def _cached_latents(run: Run, pixels: Any, vae: Any) -> tuple[Any, Any]:
    """The latents' means and stds under a finished VAE, computed once."""
    import torch

    from ostaf.world.train_vae import latent_statistics

    latents_path = run.work / "latents.pt"
    if latents_path.is_file():
        saved = torch.load(latents_path, weights_only=True)
        return saved["means"], saved["stds"]
    started = run.start()
    with torch.no_grad():
        means, stds = latent_statistics(vae, pixels)
    torch.save({"means": means, "stds": stds}, latents_path)
    run.timed("latents", started)
    return means, stds


def write_model(
    pipe: Any,
    out: Path,
    seed: int,
    recipe: Recipe,
    run: Run,
    model: str = DEMO,
    device: str = "cpu",
) -> dict[str, Any]:
    """Save the diffusers folder, then score it as loaded back from disk."""
    import torch
    from diffusers import DiffusionPipeline

    from ostaf.models.demo_model import DEMO_ARCHITECTURE, MARKER, demo_record
    from ostaf.world.evaluate import contact_sheet
    from ostaf.world.prompt_following import GUIDANCE, SAMPLER_STEPS, measure_prompt_following

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    pipe.save_pretrained(staging, safe_serialization=True)
    extra = {"safety_checker": None, "requires_safety_checker": False} if model == DEMO else {}
    loaded = DiffusionPipeline.from_pretrained(staging, local_files_only=True, **extra)
    loaded.set_progress_bar_config(disable=True)
    loaded.to(device)
    started = run.start()
    torch.manual_seed(0)
    score, images = measure_prompt_following(loaded, recipe.evaluation_prompts)
    run.timed("evaluation", started)
    run.log(f"prompt following: {score.summary()}")
    contact_sheet(images[:32], columns=8, zoom=2).save(run.work / "samples.png")
    if model == DEMO_XL:
        from ostaf.models.demo_model_xl import DEMO_XL_ARCHITECTURE, DEMO_XL_NAME, DEMO_XL_VERSION

        latent_size = int(pipe.unet.config.sample_size)
        size = latent_size * int(pipe.vae_scale_factor)
        identity: dict[str, Any] = {
            "name": DEMO_XL_NAME.replace("64 px", f"{size} px"),
            "version": DEMO_XL_VERSION if size == 64 else f"{DEMO_XL_VERSION}-{size}px",
            "seed": seed,
            "architecture": asdict(replace(DEMO_XL_ARCHITECTURE, latent_size=latent_size)),
            "vae": "the first demo model's (resources/demo_model/vae)",
        }
    else:
        identity = demo_record(seed, DEMO_ARCHITECTURE)
    record = dict(
        identity,
        recipe=_plain(asdict(recipe)),
        threads=torch.get_num_threads(),
        training_seconds=run.timings,
        prompt_following={
            "prompts": score.count,
            "sampler": (
                f"{type(loaded.scheduler).__name__} {SAMPLER_STEPS} steps, CFG {GUIDANCE:g}"
            ),
            "rates": {k: round(v, 4) for k, v in score.rates.items()},
        },
        parameters={
            name: sum(p.numel() for p in getattr(pipe, name).parameters())
            for name in ("unet", "vae", "text_encoder", "text_encoder_2")
            if getattr(pipe, name, None) is not None
        },
    )
    (staging / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return record


def _plain(value: Any) -> Any:
    """Dataclass dicts with tuples turned into lists, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from ostaf.models.demo_model import DEMO_SEED

    parser = argparse.ArgumentParser(
        prog="python -m ostaf.world.train",
        description="Train the OSTAF demo model on the procedural world, from a seed.",
    )
    parser.add_argument("--out", type=Path, required=True, help="the diffusers folder to write")
    parser.add_argument(
        "--work",
        type=Path,
        help="where stages are saved for resuming, about 1 GB (default: in the user cache)",
    )
    parser.add_argument(
        "--model",
        choices=(DEMO, DEMO_XL),
        default=DEMO,
        help="demo: the SD 1.x-shaped model; demo-xl: the SDXL-shaped one",
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the model's own")
    parser.add_argument(
        "--threads",
        type=int,
        default=min(DEFAULT_THREADS, os.cpu_count() or 1),
        help="CPU threads (the result's last bits depend on it)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=64,
        help="px, a multiple of 32 (demo-xl only; default 64, the shipped model's)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where the denoiser trains and the model is scored, e.g. cuda (default: cpu)",
    )
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke-test recipe")
    args = parser.parse_args(argv)
    if args.size < 32 or args.size % 32:
        parser.error(f"--size {args.size}: give a multiple of 32 px, such as 64 or 128")

    # Idle OpenMP threads sleep instead of spinning: on a shared CPU, spinning threads of
    # several processes take turns burning each other's time (measured 7× slower).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch

    torch.set_num_threads(args.threads)
    from ostaf import paths
    from ostaf.errors import SettingsError
    from ostaf.models.demo_model_xl import DEMO_XL_SEED
    from ostaf.models.devices import choose_placement

    seed = (
        args.seed
        if args.seed is not None
        else (DEMO_XL_SEED if args.model == DEMO_XL else DEMO_SEED)
    )
    sized = "" if args.size == 64 else f"-{args.size}px"
    work = args.work or paths.cache_dir() / f"{args.model}{sized}-model-training-{seed}"
    recipe = default_recipe(args.quick, args.model)
    try:
        device = choose_placement(args.device, "fp32").device
        record = train(args.out, work, seed, recipe, args.model, args.size, str(device))
    except SettingsError as error:
        parser.error(str(error))
    print(json.dumps(record["prompt_following"], indent=2))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
