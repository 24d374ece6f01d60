"""One-shot attribute tuning: fit the hypernetwork on one reference image (DESIGN §2).

The base model stays frozen; only the hypernetwork's parameters are optimised. VAE latents
and the prompt's text embedding are computed once. Every step samples a few timesteps,
checks the cancel token and reports progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline
from PIL import Image

from ostaf.attribute_file import Attribute
from ostaf.attribute_meta import AttributeMeta, BaseModelInfo, ReferenceInfo
from ostaf.devices import generator_for, out_of_memory_as_error
from ostaf.errors import TuningDivergedError
from ostaf.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.images import Reference, thumbnail_data_url
from ostaf.models import BaseModel
from ostaf.offsets import OffsetLinear, offset_layers, set_terms, target_layers
from ostaf.progress import CancelToken, ProgressCallback, StepClock, ignore_progress
from ostaf.regions import FLIP_ALLOWED, REGION_BY_KIND, tuning_prompt
from ostaf.rendering import decode_latents
from ostaf.requests import TuningSettings

OOM_ADVICE = "lower the resolution or the timesteps per step, or turn on memory saving in Settings"


@dataclass
class TuningResult:
    """The tuned attribute and how the run went."""

    attribute: Attribute
    losses: list[float]
    seconds: float


@dataclass
class _Batch:
    """What every step samples from, computed once."""

    latents: torch.Tensor  # (V, C, h, w): the reference and, when allowed, its mirror
    weights: torch.Tensor | None  # (V, 1, h, w) loss weights from the mask, or None
    text: torch.Tensor  # (1, T, D) prompt embedding


def tune(
    model: BaseModel,
    reference: Reference,
    settings: TuningSettings,
    name: str = "",
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> TuningResult:
    """Tune an attribute of kind `settings.kind` on `reference`; raise Cancelled if asked to."""
    settings.validate()
    cancel = cancel or CancelToken()
    clock = StepClock(settings.steps)
    model.merger.restore()  # tuning always starts from the base weights
    region = settings.region or REGION_BY_KIND[settings.kind]
    unet = model.unet
    paths = region.select(name for name, _ in unet.named_modules())
    if not paths:
        raise TuningDivergedError(
            f"the model has no attention layers in the {settings.kind} region"
        )
    prompt = tuning_prompt(settings.kind, settings.token, settings.class_word)
    progress(clock.report("preparing", 0, message="Encoding the reference…"))
    with out_of_memory_as_error("preparing the reference", OOM_ADVICE):
        batch = _prepare(model, reference, prompt, _flip(settings))
    cancel.check()

    device = model.placement.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig(rank=settings.rank)).to(
            device
        )
    optimizer = torch.optim.AdamW(hyper.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    noise_scheduler = DDPMScheduler.from_config(model.pipe.scheduler.config)
    sampler = torch.Generator("cpu").manual_seed(settings.seed)
    losses: list[float] = []
    checkpointing = settings.memory_saving and unet.is_gradient_checkpointing is False
    if checkpointing:
        unet.enable_gradient_checkpointing()
    try:
        with offset_layers(unet, paths) as wrappers, out_of_memory_as_error("tuning", OOM_ADVICE):
            for step in range(1, settings.steps + 1):
                cancel.check()
                loss = _step(model, hyper, wrappers, batch, noise_scheduler, sampler, settings)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(hyper.parameters(), 1.0)
                optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TuningDivergedError(
                        f"the loss became {value} at step {step}; lower the learning rate "
                        f"(now {settings.learning_rate:g}) or use fp32 precision"
                    )
                losses.append(value)
                preview = None
                if settings.preview_every and (
                    step % settings.preview_every == 0 or step == settings.steps
                ):
                    preview = _preview(model, hyper, wrappers, prompt, settings, cancel)
                progress(clock.report("tuning", step, loss=value, preview=preview))
    finally:
        if checkpointing:
            unet.disable_gradient_checkpointing()
    with torch.no_grad():
        factors = {
            p: (a.detach().float().cpu().clone(), b.detach().float().cpu().clone())
            for p, (a, b) in hyper().items()
        }
    meta = AttributeMeta(
        name=name or f"{settings.kind} from {reference.file_name}",
        kind=settings.kind,
        region=region,
        targets=sorted(factors),
        rank=settings.rank,
        base_model=BaseModelInfo(model.name, model.architecture, model.fingerprint),
        reference=ReferenceInfo(
            sha256=reference.sha256,
            width=reference.original_size[0],
            height=reference.original_size[1],
            thumbnail=thumbnail_data_url(reference.image),
            file_name=reference.file_name,
        ),
        tuning={
            "steps": settings.steps,
            "learning_rate": settings.learning_rate,
            "seed": settings.seed,
            "timesteps_per_step": settings.timesteps_per_step,
            "prompt": prompt,
            "token": settings.token,
            "class_word": settings.class_word,
            "resolution": model.resolution,
            "crop": list(settings.crop) if settings.crop else None,
            "masked": reference.mask is not None,
            "flip": _flip(settings),
            "final_loss": round(float(np.mean(losses[-20:])), 6),
            "device": model.placement.label,
        },
    )
    return TuningResult(
        Attribute(meta, factors), losses, clock.report("done", settings.steps).elapsed_s
    )


def _flip(settings: TuningSettings) -> bool:
    return FLIP_ALLOWED[settings.kind] if settings.flip is None else settings.flip


@torch.no_grad()
def _prepare(model: BaseModel, reference: Reference, prompt: str, flip: bool) -> _Batch:
    pipe = model.pipe
    device = model.placement.device
    views = [reference.image]
    if flip:
        views.append(reference.image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    pixels = torch.stack([_to_tensor(v) for v in views]).to(device)  # (V, 3, H, W) in [-1, 1]
    posterior = pipe.vae.encode(pixels.to(pipe.vae.dtype)).latent_dist
    latents = posterior.mean * pipe.vae.config.scaling_factor  # (V, C, h, w)
    weights = None
    if reference.mask is not None:
        mask_views = [reference.mask]
        if flip:
            mask_views.append(reference.mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        mask = torch.stack([_to_tensor(m, gray=True) for m in mask_views]).to(
            device
        )  # (V, 1, H, W)
        weights = F.adaptive_avg_pool2d(mask, latents.shape[-2:])  # (V, 1, h, w) in [0, 1]
    text, _ = pipe.encode_prompt(prompt, device, 1, False)  # (1, T, D)
    return _Batch(latents.float(), weights, text)


def _to_tensor(img: Image.Image, gray: bool = False) -> torch.Tensor:
    array = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array.copy())
    if gray:
        return tensor[None]  # (1, H, W) in [0, 1]
    return tensor.permute(2, 0, 1) * 2.0 - 1.0  # (3, H, W) in [-1, 1]


def _step(
    model: BaseModel,
    hyper: Hypernetwork,
    wrappers: dict[str, OffsetLinear],
    batch: _Batch,
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    settings: TuningSettings,
) -> torch.Tensor:
    device, dtype = model.placement.device, model.placement.dtype
    n = settings.timesteps_per_step
    views = torch.randint(0, batch.latents.shape[0], (n,), generator=sampler)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (n,), generator=sampler
    )
    x0 = batch.latents[views.to(device)]  # (n, C, h, w)
    noise = torch.randn(x0.shape, generator=sampler).to(device)
    timesteps = timesteps.to(device)
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(x0, noise, timesteps)
    else:
        target = noise
    set_terms(wrappers, [(hyper(), 1.0)])
    text = batch.text.expand(n, -1, -1).to(dtype)
    pred = model.unet(noisy.to(dtype), timesteps, encoder_hidden_states=text).sample.float()
    weights = None if batch.weights is None else batch.weights[views.to(device)]
    return masked_mse(pred, target, weights)


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None
) -> torch.Tensor:
    """Mean squared error over (n, C, h, w), weighted per pixel by `weights` (n, 1, h, w)."""
    error = (pred - target) ** 2
    if weights is None:
        return error.mean()
    return (error * weights).sum() / (weights.sum() * error.shape[1]).clamp_min(1e-8)


@torch.no_grad()
def _preview(
    model: BaseModel,
    hyper: Hypernetwork,
    wrappers: dict[str, OffsetLinear],
    prompt: str,
    settings: TuningSettings,
    cancel: CancelToken,
) -> Image.Image:
    """A low-step render of the tuning prompt with the current offsets (fixed seed)."""
    set_terms(wrappers, [(hyper(), 1.0)])
    components = dict(model.pipe.components)
    components["scheduler"] = DDIMScheduler.from_config(model.pipe.scheduler.config)
    pipe = StableDiffusionPipeline(**components)
    pipe.set_progress_bar_config(disable=True)

    def stop_if_cancelled(
        _pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        cancel.check()
        return kwargs

    latents = pipe(
        prompt,
        num_inference_steps=settings.preview_steps,
        guidance_scale=5.0,
        generator=generator_for(model.placement.device, settings.seed),
        output_type="latent",
        callback_on_step_end=stop_if_cancelled,
    ).images
    return decode_latents(model, latents)[0]
