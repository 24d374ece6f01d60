"""Training a demo model's U-Net and its CLIP text encoder(s) together on the world's latents.

ε-prediction on SD 1.x's noise schedule (Min-SNR weighted), with the habits that make a
small text-to-image model follow its prompts: captions that leave attributes out (so
partial prompts work), empty captions one time in ten (classifier-free guidance needs an
unconditional model), AdamW, a cosine learning rate and an exponential moving average of
both networks, which is what ships.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ostaf.world.checkpoint import StageCheckpoint, python_random_state, restore_python_random
from ostaf.world.scenes import ATTRIBUTES, Scene, caption

Log = Callable[[str], None]


@dataclass(frozen=True)
class DenoiserRecipe:
    """How the U-Net and the text encoder are trained."""

    steps: int = 12_000
    batch: int = 32
    learning_rate: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    min_snr_gamma: float = 5.0  # loss weight min(SNR, γ)/SNR: less effort on near-clean steps
    empty_caption: float = 0.1
    attribute_dropout: float = 0.15  # each attribute left out of a caption with this chance
    checkpoint_every: int = 250
    # A warm restart (SGDR): from step `restart_at` on, a second cosine cycle from
    # `restart_rate` to a tenth of it over the remaining steps; 0 means one cycle.
    restart_at: int = 0
    restart_rate: float = 3e-4


class Captioner:
    """Seeded captions with attribute dropout and empty captions."""

    def __init__(self, recipe: DenoiserRecipe, seed: int) -> None:
        self.recipe = recipe
        self.rng = random.Random(seed)

    def __call__(self, scene: Scene) -> str:
        if self.rng.random() < self.recipe.empty_caption:
            return ""
        dropout = self.recipe.attribute_dropout
        return caption(scene, [name for name in ATTRIBUTES if self.rng.random() < dropout])


def encode_text(
    tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, prompts: Sequence[str]
) -> torch.Tensor:
    """Text embeddings (B, T, D) exactly as StableDiffusionPipeline computes them."""
    ids = tokenizer(
        list(prompts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


class TextConditioner(Protocol):
    """Prompts → what the U-Net reads: text states (B, T, D) and its extra inputs (SDXL's
    pooled embedding and size ids), exactly as the model's pipeline computes them."""

    @property
    def encoders(self) -> dict[str, torch.nn.Module]:
        """The text encoders, by their folder name: trained with the U-Net."""
        ...

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


@dataclass
class SdConditioner:
    """SD 1.x: one CLIP text encoder, its last layer's states."""

    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel

    @property
    def encoders(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.text_encoder}

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return encode_text(self.tokenizer, self.text_encoder, prompts), {}


@dataclass
class XlConditioner:
    """SDXL: both encoders through the pipeline's own `encode_prompt` (penultimate states
    concatenated, the second encoder's pooled projection) and the size ids of a whole,
    uncropped picture of `size` px."""

    pipe: Any  # StableDiffusionXLPipeline
    size: int

    @property
    def encoders(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.pipe.text_encoder, "text_encoder_2": self.pipe.text_encoder_2}

    def __call__(self, prompts: Sequence[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from ostaf.models.demo_model_xl import xl_time_ids

        hidden, _, pooled, _ = self.pipe.encode_prompt(
            list(prompts),
            device=self.pipe.text_encoder.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )  # (B, T, D1 + D2), (B, P)
        ids = torch.tensor(
            [xl_time_ids(self.size)] * len(prompts), dtype=hidden.dtype, device=hidden.device
        )
        return hidden, {"text_embeds": pooled, "time_ids": ids}


def train_denoiser(
    unet: UNet2DConditionModel,
    conditioner: TextConditioner,
    latents: tuple[torch.Tensor, torch.Tensor],
    scenes: Sequence[Scene],
    recipe: DenoiserRecipe,
    seed: int,
    checkpoint: StageCheckpoint,
    log: Log,
    device: torch.device | None = None,
) -> tuple[UNet2DConditionModel, dict[str, torch.nn.Module]]:
    """Train on (means, stds) latents of `scenes`; returns the moving averages of the U-Net
    and of each text encoder (by name). On another `device` (a GPU) the networks train
    there; every random draw still comes from the same CPU generators, so a run draws the
    same batches anywhere, but its last bits differ from the CPU's."""
    device = device or torch.device("cpu")
    means, stds = latents
    scheduler = DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
    )
    # Min-SNR weighting: near-clean steps (high SNR) add large, conflicting gradients about
    # fine detail; capping their weight lets the structure (shape, colour), decided at low
    # SNR, converge several times faster on a small budget.
    snr = scheduler.alphas_cumprod / (1.0 - scheduler.alphas_cumprod)
    weights = (torch.clamp(snr, max=recipe.min_snr_gamma) / snr).to(device)
    encoders = conditioner.encoders
    unet.to(device)
    for encoder in encoders.values():
        encoder.to(device)
    ema_unet = copy.deepcopy(unet).requires_grad_(False)
    ema_encoders = {n: copy.deepcopy(e).requires_grad_(False) for n, e in encoders.items()}
    parameters = [*unet.parameters(), *(p for e in encoders.values() for p in e.parameters())]
    averaged = [
        *ema_unet.parameters(),
        *(p for e in ema_encoders.values() for p in e.parameters()),
    ]
    optimizer = torch.optim.AdamW(
        parameters, lr=recipe.learning_rate, betas=(0.9, 0.99), weight_decay=recipe.weight_decay
    )
    sampler = torch.Generator().manual_seed(seed)
    captioner = Captioner(recipe, seed + 1)
    start = 0
    saved = checkpoint.load()
    if saved is not None:
        unet.load_state_dict(saved["unet"])
        ema_unet.load_state_dict(saved["ema_unet"])
        for name in encoders:
            encoders[name].load_state_dict(saved["encoders"][name])
            ema_encoders[name].load_state_dict(saved["ema_encoders"][name])
        optimizer.load_state_dict(saved["optimizer"])
        sampler.set_state(saved["sampler"])
        restore_python_random(captioner.rng, saved["captions"])
        start = int(saved["step"])
        log(f"denoiser: resuming at step {start}")
    unet.train()
    for encoder in encoders.values():
        encoder.train()
    clock, running, since = time.perf_counter(), 0.0, start
    for step in range(start, recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, recipe)
        picks = torch.randint(0, len(means), (recipe.batch,), generator=sampler)
        jitter = torch.randn(means[picks].shape, generator=sampler)
        clean = means[picks] + stds[picks] * jitter  # (B, 4, h, w): a posterior sample
        noise = torch.randn(clean.shape, generator=sampler)
        timesteps = torch.randint(0, 1000, (recipe.batch,), generator=sampler)
        clean, noise, timesteps = clean.to(device), noise.to(device), timesteps.to(device)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        text, added = conditioner([captioner(scenes[i]) for i in picks.tolist()])
        prediction = unet(
            noisy, timesteps, encoder_hidden_states=text, added_cond_kwargs=added or None
        ).sample
        per_sample = ((prediction - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (per_sample * weights[timesteps]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        # Short memory early on, so the average is useful after a few hundred steps.
        decay = min(recipe.ema_decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            torch._foreach_lerp_(averaged, parameters, 1.0 - decay)
        running += float(loss.detach())
        done = step + 1
        if done % recipe.checkpoint_every == 0 or done == recipe.steps:
            checkpoint.save(
                {
                    "unet": unet.state_dict(),
                    "encoders": {n: e.state_dict() for n, e in encoders.items()},
                    "ema_unet": ema_unet.state_dict(),
                    "ema_encoders": {n: e.state_dict() for n, e in ema_encoders.items()},
                    "optimizer": optimizer.state_dict(),
                    "sampler": sampler.get_state(),
                    "captions": python_random_state(captioner.rng),
                    "step": done,
                }
            )
            seconds = time.perf_counter() - clock
            log(
                f"denoiser: step {done}/{recipe.steps} loss {running / (done - since):.4f} "
                f"({seconds:.0f} s)"
            )
            clock, running, since = time.perf_counter(), 0.0, done
    return ema_unet.eval(), {n: e.eval() for n, e in ema_encoders.items()}


def _learning_rate(step: int, recipe: DenoiserRecipe) -> float:
    """Linear warm-up, then a cosine decay to a tenth; with a restart, a second cosine
    cycle from `restart_rate` (the first cycle ends at `restart_at`, so a run trained
    without the restart resumes into it unchanged)."""
    if recipe.restart_at and step >= recipe.restart_at:
        into = (step - recipe.restart_at) / (recipe.steps - recipe.restart_at)
        return recipe.restart_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * into)))
    cycle = recipe.restart_at or recipe.steps
    warm = min(1.0, (step + 1) / recipe.warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * step / cycle))
    return recipe.learning_rate * warm * (0.1 + 0.9 * cosine)
