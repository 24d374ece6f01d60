"""One-shot attribute tuning: fit the hypernetwork on one reference image (DESIGN §2).

The base model stays frozen; only the hypernetwork's parameters are optimised. VAE latents
and the prompt's conditioning (text states and, for SDXL, the pooled embedding and size/crop
ids, as the model's family makes them) are computed once. Every step samples a few timesteps and
runs them through the U-Net together (in fewer per pass when the memory preflight says the
card is short; gradients accumulate, so the step is the same), checks the cancel token and
reports progress.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from PIL import Image

from ostaf.errors import SettingsError, TuningDivergedError
from ostaf.images import Reference, thumbnail_data_url
from ostaf.library.attribute_file import Attribute
from ostaf.library.attribute_meta import (
    SHIFTS_VERSION,
    AttributeMeta,
    BaseModelInfo,
    ReferenceInfo,
    TuningRecord,
    check_attribute_name,
    default_attribute_name,
)
from ostaf.method import previews
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.memory import MemoryPlan, plan_tuning_memory, resident_bytes_of
from ostaf.method.offsets import OffsetLinear, offset_layers, set_terms, target_layers
from ostaf.method.placeholder import PlaceholderShift, placeholder_ids, shifted_embeddings
from ostaf.method.preview_worker import preview_worker, room_beside, settled
from ostaf.method.regions import (
    TIMESTEPS_BY_KIND,
    Region,
    prior_prompt,
    timestep_window,
    tuning_prompt,
)
from ostaf.method.shift_keys import split_shift_key
from ostaf.method.speed import DeferredLosses, SpeedOptions, accelerated
from ostaf.method.tuning_checkpoint import (
    Checkpointing,
    DamagedStateError,
    TuningState,
    fit_optimizer_state,
    load_state,
    run_key,
    save_state,
    set_aside,
)
from ostaf.models.base_model import BaseModel
from ostaf.models.demo_model import is_demo_source
from ostaf.models.devices import (
    Placement,
    device_memory_budget,
    generator_for,
    out_of_memory_as_error,
    use_job_threads,
)
from ostaf.progress import CancelToken, ProgressCallback, StepClock, ignore_progress
from ostaf.render.rendering import decode_latents, pipeline_with_scheduler
from ostaf.requests import TuningSettings

OOM_ADVICE = (
    "turn on memory saving (Settings, or --memory-saving), tune at a smaller size "
    "(Advanced → Resolution, or --size), lower the timesteps per step, or use a smaller model"
)


@dataclass
class TuningResult:
    """The tuned attribute and how the run went."""

    attribute: Attribute
    losses: list[float]
    seconds: float
    memory: MemoryPlan | None = None  # what the preflight predicted and chose
    notes: list[str] = field(default_factory=list)  # e.g. a damaged saved state set aside


@dataclass
class _Batch:
    """What every step samples from, computed once."""

    latents: torch.Tensor  # (V, C, h, w): the reference and, when allowed, its mirror
    weights: torch.Tensor | None  # (V, 1, h, w) loss weights from the mask, or None
    text: torch.Tensor  # (1, T, D) prompt embedding
    # The U-Net's extra inputs, each (1, …): SDXL's pooled embedding and size/crop ids.
    added: dict[str, torch.Tensor] | None = None
    # Prior preservation: the description without the attribute (text and extra inputs) and
    # the weight of its loss; None when off.
    prior: _Batch | None = None
    prior_weight: float = 0.0
    # When the placeholder's embedding is learned: encodes the prompt again (with gradients)
    # every step, giving the text and extra inputs.
    encode: Callable[[], _Batch] | None = None


def tune(
    model: BaseModel,
    reference: Reference,
    settings: TuningSettings,
    name: str = "",
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    checkpointing: Checkpointing | None = None,
    speed: SpeedOptions | None = None,
) -> TuningResult:
    """Tune an attribute of kind `settings.kind` on `reference`; raise Cancelled if asked to.

    With `checkpointing`, the run's state is saved every few seconds and a saved state of the
    same run is resumed from; the result is the same as an uninterrupted run's. `speed`
    switches the loop's optimisations (default: `OSTAF_SPEED`, else `SpeedOptions()`)."""
    settings.validate()
    speed = (speed or SpeedOptions.from_env()).resolved(model.placement.device)
    use_job_threads(model.placement.device)
    cancel = cancel or CancelToken()
    clock = StepClock(settings.steps)
    model.merger.restore()  # tuning always starts from the base weights
    region = settings.region or model.family.region(settings.kind)
    size = model.tuning_size(settings.size)
    if reference.image.size != (size, size):
        raise SettingsError(
            f"the reference was prepared at {reference.image.width} px but tuning is at "
            f"{size} px; prepare it at the tuning size"
        )
    unet = model.unet
    paths = region.select(name for name, _ in unet.named_modules())
    if not paths:
        raise TuningDivergedError(
            f"the model has no attention layers in the {settings.kind} region"
        )
    prompt = tuning_prompt(settings.kind, settings.token, settings.class_word, settings.caption)
    progress(clock.report("preparing", 0, message="Encoding the reference…"))
    with out_of_memory_as_error("preparing the reference", OOM_ADVICE):
        batch = _prepare(model, reference, prompt, settings.flips(), settings.rotate)
        if settings.prior:
            kept = prior_prompt(settings.kind, prompt, settings.token, settings.class_word)
            batch.prior = _prepare_text(model, reference, kept)
            batch.prior_weight = float(settings.prior)
    cancel.check()

    plan, note = _memory_plan(model, region, settings, size)
    progress(clock.report("preparing", 0, message=note))
    cancel.check()

    device = model.placement.device

    embeddings = model.merger.embeddings
    if settings.embedding_rate:
        batch.encode = lambda: _prepare_text(model, reference, prompt, grad=True)

    def fresh() -> tuple[Tuned, torch.optim.Optimizer, torch.Generator]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            layers = target_layers(unet, paths)
            net = Hypernetwork(layers, HypernetworkConfig(rank=settings.rank)).to(device)
        groups: list[dict[str, Any]] = [{"params": list(net.parameters())}]
        shift = None
        if settings.embedding_rate:
            ids = placeholder_ids(
                model.pipe, model.family.text_encoders, model.family.tokenizers, settings.token
            )
            widths = {name: layer.embedding_dim for name, layer in embeddings.items()}
            shift = PlaceholderShift(ids, widths).to(device)
            rate = settings.embedding_rate
            groups.append({"params": list(shift.parameters()), "lr": rate, "weight_decay": 0})
        optim = make_optimizer(groups, settings.learning_rate, fused=speed.fused_optimizer)
        return Tuned(net, shift), optim, torch.Generator("cpu").manual_seed(settings.seed)

    tuned, optimizer, sampler = fresh()
    hyper = tuned.hyper
    noise_scheduler = training_scheduler(model)
    window = timestep_window(timestep_share(settings), noise_scheduler.config.num_train_timesteps)
    # With prior preservation every sample runs twice in its pass (planned as such).
    per_pass = plan.timesteps_per_pass // _copies(settings) if plan else settings.timesteps_per_pass
    per_pass = max(per_pass, 1) if plan else per_pass
    per_pass = min(per_pass or settings.timesteps_per_step, settings.timesteps_per_step)
    losses: list[float] = []
    notes: list[str] = []
    first_step = 1
    key = ""
    if checkpointing is not None:
        key = run_key(model, reference, settings, region)
        try:
            state = load_state(checkpointing.path)
            if state is not None and state.key == key and state.step <= settings.steps:
                tuned.load_state(state.hypernetwork)
                optimizer.load_state_dict(fit_optimizer_state(state.optimizer, optimizer))
                # A resumed run may lower the rates.
                optimizer.param_groups[0]["lr"] = settings.learning_rate
                for group in optimizer.param_groups[1:]:
                    group["lr"] = settings.embedding_rate
                sampler.set_state(state.sampler)
                losses = list(state.losses)
                first_step = state.step + 1
                clock.done_before = state.step
                progress(
                    clock.report(
                        "preparing",
                        state.step,
                        message=f"Resuming from step {state.step}",
                        note=f"Resuming from step {state.step}",
                    )
                )
        except (DamagedStateError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            # Whatever was half-loaded is dropped: the run starts over exactly as a new one.
            tuned, optimizer, sampler = fresh()
            hyper = tuned.hyper
            losses, first_step, clock.done_before = [], 1, 0
            moved = set_aside(checkpointing.path)
            note = (
                f"the saved state {checkpointing.path} could not be read ({exc}); it was "
                f"moved to {moved.name} and the run starts over"
            )
            notes.append(note)
            progress(clock.report("preparing", 0, message=note, note=note))
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    last_save = time.perf_counter()
    # Losses stay on the device until read back together (every step on the CPU).
    pending = DeferredLosses(float(speed.sync_interval_s or 0.0))
    held: Image.Image | None = None  # a preview waiting for the next progress report

    def settle(ready: list[tuple[int, float]]) -> None:
        """Check and keep losses read back from the device."""
        for done, value in ready:
            if not math.isfinite(value):
                kept = ""
                if checkpointing is not None and checkpointing.path.is_file():
                    kept = " (the last good state is kept: the next run resumes from it)"
                raise TuningDivergedError(
                    f"the loss became {value} at step {done}; lower the learning rate "
                    f"(now {settings.learning_rate:g}) or use fp32 precision{kept}"
                )
        losses.extend(value for _, value in ready)

    def save(to: Checkpointing, step: int) -> None:
        settle(pending.flush())  # a state never holds steps whose loss is unchecked
        state = TuningState(
            key, step, losses, tuned.state(), optimizer.state_dict(), sampler.get_state()
        )
        save_state(to.path, state, to.job)

    if checkpointing is not None and first_step == 1:
        save(checkpointing, 0)  # a run that dies before its first periodic save resumes too

    # Previews show the attribute on a subject of their own (what is being learned).
    probe = previews.preview_prompt(settings.kind, settings.token, is_demo_source(model.source))
    wants_checkpointing = settings.memory_saving or (plan is not None and plan.checkpointing)
    recompute = wants_checkpointing and unet.is_gradient_checkpointing is False
    if recompute:
        unet.enable_gradient_checkpointing()
    shifts = tuned.shift() if tuned.shift is not None else {}
    try:
        with (
            preview_worker(
                model,
                paths,
                probe,
                settings,
                size,
                cancel,
                bool(speed.background_previews) and room_beside(plan),
            ) as aside,
            offset_layers(unet, paths) as wrappers,
            shifted_embeddings(embeddings, shifts),
            out_of_memory_as_error("tuning", OOM_ADVICE),
            accelerated(unet, wrappers, speed, device) as accelerator,
            settled(aside),
        ):
            for step in range(first_step, settings.steps + 1):
                # Quitting (not the user's Stop) keeps the steps done since the last save.
                if checkpointing is not None and cancel.keeps_progress and step > first_step:
                    save(checkpointing, step - 1)
                cancel.check()
                optimizer.zero_grad(set_to_none=True)
                loss = accelerator.step(
                    lambda: _step(
                        unet,
                        model.placement,
                        hyper,
                        wrappers,
                        batch,
                        noise_scheduler,
                        sampler,
                        settings.timesteps_per_step,
                        per_pass,
                        window,
                    ),
                    sampler,
                    parameters,
                )
                wants_preview = bool(settings.preview_every) and (
                    step % settings.preview_every == 0 or step == settings.steps
                )
                wants_save = checkpointing is not None and (
                    time.perf_counter() - last_save >= checkpointing.interval_s
                )
                now = wants_preview or wants_save or step == settings.steps
                ready = pending.add(step, loss, now=now)
                settle(ready)  # a non-finite loss stops the run before the optimiser step
                torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                optimizer.step()
                if checkpointing is not None and wants_save:
                    save(checkpointing, step)
                    last_save = time.perf_counter()
                if wants_preview and aside is None:
                    held = _preview(model, hyper, wrappers, probe, settings, size, cancel)
                elif wants_preview and aside is not None:
                    with torch.no_grad():  # skipped while the previous one still renders
                        aside.submit(hyper(), wait=step == settings.steps)
                if aside is not None:
                    held = (aside.finish() if step == settings.steps else aside.take()) or held
                for index, (done, value) in enumerate(ready):
                    # A preview goes with the newest report (the step's own when inline).
                    shown, held = (held, None) if index == len(ready) - 1 else (None, held)
                    progress(clock.report("tuning", done, loss=value, preview=shown))
            notes += accelerator.report()
    finally:
        if recompute:
            unet.disable_gradient_checkpointing()
    ran = TuningRecord(
        prompt=prompt, timesteps_per_pass=per_pass, memory_saving=wants_checkpointing
    )
    attribute = tuned_attribute(model, reference, settings, region, tuned, ran, losses, name)
    seconds = clock.report("done", settings.steps).elapsed_s
    return TuningResult(attribute, losses, seconds, plan, notes)


def tuned_attribute(
    model: BaseModel,
    reference: Reference,
    settings: TuningSettings,
    region: Region,
    tuned: Tuned,
    ran: TuningRecord,
    losses: list[float],
    name: str = "",
) -> Attribute:
    """The attribute a run learnt, as it is saved: the offsets at the settings' strength, the
    placeholder's shifts and their base rows, and the metadata; `ran` holds what only the run
    knows (its prompt, timesteps per pass, memory saving) and anything it adds."""
    embeddings = model.merger.embeddings
    shifts = tuned.shift() if tuned.shift is not None else {}
    with torch.no_grad():
        # The up factor carries the strength: ΔW = strength · A·B / r.
        strength = float(settings.strength)
        factors = {
            p: ((a.detach().float() * strength).cpu().clone(), b.detach().float().cpu().clone())
            for p, (a, b) in tuned.hyper().items()
        }
        learned = {k: v.detach().float().cpu().clone() for k, v in shifts.items()}
        bases = {k: _row(embeddings, k).detach().float().cpu().clone() for k in learned}
    tuning: TuningRecord = {
        "steps": settings.steps,
        "learning_rate": settings.learning_rate,
        "seed": settings.seed,
        "timesteps_per_step": settings.timesteps_per_step,
        "token": settings.token,
        "class_word": settings.class_word,
        "caption": settings.caption,
        "timestep_low": timestep_share(settings)[0],
        "timestep_high": timestep_share(settings)[1],
        "prior": float(settings.prior),
        "strength": strength,
        "embedding_rate": float(settings.embedding_rate),
        "resolution": model.tuning_size(settings.size),
        "family": model.family.id,
        "prediction_type": str(model.pipe.scheduler.config.prediction_type),
        "crop": list(settings.crop) if settings.crop else None,
        "masked": reference.mask is not None,
        "flip": settings.flips(),
        "rotate": settings.rotate,
        "final_loss": round(float(np.mean(losses[-20:])), 6),
        "device": model.placement.label,
    }
    meta = AttributeMeta(
        name=check_attribute_name(name)
        if name
        else default_attribute_name(settings.kind, reference.file_name),
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
        tuning=tuning | ran,
        shifts=list(learned),  # in the placeholder's token order (for exports)
        format_version=SHIFTS_VERSION if learned else 1,
    )
    return Attribute(meta, factors, learned, bases)


def _row(embeddings: dict[str, torch.nn.Embedding], key: str) -> torch.Tensor:
    encoder, token_id = split_shift_key(key)
    return embeddings[encoder].weight[token_id]


class Tuned:
    """What a run learns: the hypernetwork and, when asked, the placeholder's shifts."""

    def __init__(self, hyper: Hypernetwork, shift: PlaceholderShift | None) -> None:
        self.hyper, self.shift = hyper, shift

    def state(self) -> dict[str, torch.Tensor]:
        """One state dict (the shifts' keys prefixed; a run without them saves as before)."""
        state = dict(self.hyper.state_dict())
        if self.shift is not None:
            state |= {SHIFT_STATE + k: v for k, v in self.shift.state_dict().items()}
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        own = {k: v for k, v in state.items() if not k.startswith(SHIFT_STATE)}
        self.hyper.load_state_dict(own)
        shift = {k[len(SHIFT_STATE) :]: v for k, v in state.items() if k.startswith(SHIFT_STATE)}
        if self.shift is not None:
            self.shift.load_state_dict(shift)
        elif shift:
            raise KeyError("the saved state holds placeholder shifts this run does not learn")


SHIFT_STATE = "placeholder:"


def make_optimizer(parameters: list[Any], lr: float, fused: bool = True) -> torch.optim.Optimizer:
    """AdamW for the hypernetwork (parameters, or parameter groups), as one fused kernel
    where the device has one (and `fused`): the hypernetwork has ~10× a LoRA's parameters,
    and fused is 3× faster on a CPU."""
    if fused:
        try:
            return torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4, fused=True)
        except RuntimeError:  # a device without the fused kernel
            pass
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)


def _memory_plan(
    model: BaseModel, region: Region, settings: TuningSettings, size: int
) -> tuple[MemoryPlan | None, str]:
    """Predict the step's peak memory and choose settings that fit before the run starts.

    The budget is `memory_budget_mb` when set, else what the GPU has free; on the CPU with no
    budget set the plan only reports (nothing is changed)."""
    device = model.placement.device
    budget = (
        settings.memory_budget_mb * 2**20
        if settings.memory_budget_mb
        else device_memory_budget(device)
    )
    try:
        plan = plan_tuning_memory(
            model.unet.config,
            size,
            model.placement.dtype,
            region,
            settings.timesteps_per_step * _copies(settings),
            resident_bytes_of([model.unet, *model.text_encoders, model.pipe.vae], device),
            budget,
            rank=settings.rank,
            timesteps_per_pass=settings.timesteps_per_pass * _copies(settings),
            checkpointing=settings.memory_saving,
            vae_scale_factor=model.vae_scale_factor,
            added_inputs=model.family.added_inputs(model.unet.config),
        )
    except (RuntimeError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
        # The estimate is advice: an architecture it cannot trace still tunes as asked.
        return None, f"Memory preflight unavailable ({type(exc).__name__}: {exc})"
    return plan, f"Memory: {plan.describe()}"


def _copies(settings: TuningSettings) -> int:
    """How many U-Net samples each sampled timestep costs: two with prior preservation."""
    return 2 if settings.prior else 1


def timestep_share(settings: TuningSettings) -> tuple[float, float]:
    """The share of the timesteps tuning samples: the settings' own, else the kind's."""
    return settings.timesteps or TIMESTEPS_BY_KIND[settings.kind]


@torch.no_grad()
def _prepare(
    model: BaseModel, reference: Reference, prompt: str, flip: bool, rotate: bool = False
) -> _Batch:
    pipe = model.pipe
    device = model.placement.device
    views = _views(reference.image, flip, rotate)
    pixels = torch.stack([_to_tensor(v) for v in views]).to(device)  # (V, 3, H, W) in [-1, 1]
    posterior = pipe.vae.encode(pixels.to(pipe.vae.dtype)).latent_dist
    latents = posterior.mean * pipe.vae.config.scaling_factor  # (V, C, h, w)
    weights = None
    if reference.mask is not None:
        mask_views = _views(reference.mask, flip, rotate)
        mask = torch.stack([_to_tensor(m, gray=True) for m in mask_views]).to(device)  # (V,1,H,W)
        weights = F.adaptive_avg_pool2d(mask, latents.shape[-2:])  # (V, 1, h, w) in [0, 1]
    text = _prepare_text(model, reference, prompt)
    return _Batch(latents.float(), weights, text.text, text.added)


def _views(image: Image.Image, flip: bool, rotate: bool) -> list[Image.Image]:
    """`image`, mirrored with `flip`, and each of those turned by 90, 180 and 270 degrees
    with `rotate` (the reference is square)."""
    views = [image]
    if flip:
        views.append(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    if rotate:
        turns = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)
        views += [view.transpose(turn) for view in list(views) for turn in turns]
    return views


def _prepare_text(
    model: BaseModel, reference: Reference, prompt: str, grad: bool = False
) -> _Batch:
    """The conditioning of `prompt` alone (no latents) as a batch; with `grad`, gradients
    reach the text encoders' inputs (the placeholder's shifts)."""
    with torch.set_grad_enabled(grad):
        cond = model.family.encode_prompt(
            model.pipe, prompt, model.placement.device, reference.image.size[::-1]
        )
    empty = torch.empty(0)
    return _Batch(empty, None, cond.hidden, cond.added or None)


def _to_tensor(img: Image.Image, gray: bool = False) -> torch.Tensor:
    array = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array.copy())
    if gray:
        return tensor[None]  # (1, H, W) in [0, 1]
    return tensor.permute(2, 0, 1) * 2.0 - 1.0  # (3, H, W) in [-1, 1]


def _step(
    unet: UNet2DConditionModel,
    placement: Placement,
    hyper: Hypernetwork,
    wrappers: dict[str, OffsetLinear],
    batch: _Batch,
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    timesteps: int,
    per_pass: int,
    window: tuple[int, int] = (0, 1000),
) -> torch.Tensor:
    """Loss of one step over `timesteps` samples, back-propagated into the hypernetwork.

    The samples go through the U-Net `per_pass` at a time; each pass's loss is weighted by
    its share of the step, so the accumulated gradient equals one pass over all of them."""
    device, dtype = placement.device, placement.dtype
    if batch.encode is not None:
        encoded = batch.encode()
        batch = dataclasses.replace(batch, text=encoded.text, added=encoded.added)
    noisy, t, target, weights = _noisy_samples(
        batch, noise_scheduler, sampler, timesteps, device, window
    )
    prior_target = None
    if batch.prior is not None:
        # What the base model predicts for the description without the attribute, on the
        # same noisy latents: the tuned U-Net is pulled towards it (prior preservation).
        set_terms(wrappers, [], dtype)
        prior_target = _frozen_prediction(unet, dtype, batch.prior, noisy, t, per_pass)
    set_terms(wrappers, [(hyper(), 1.0)], dtype)
    total = torch.zeros((), device=device)
    for start in range(0, timesteps, per_pass):
        part = slice(start, min(start + per_pass, timesteps))
        share = pass_share(part, timesteps, weights)
        part_weights = None if weights is None else weights[part]
        last = part.stop == timesteps
        prior_part = None if prior_target is None else prior_target[part]
        total += _pass(
            unet,
            dtype,
            batch,
            noisy[part],
            t[part],
            target[part],
            part_weights,
            share,
            last,
            prior_part,
        )
    return total


def pass_share(part: slice, timesteps: int, weights: torch.Tensor | None) -> float:
    """The share of a step's loss that the timesteps `part` of `timesteps` carry (by their
    loss weights when there are any): 1 when one pass takes them all."""
    if part.stop - part.start >= timesteps:
        return 1.0
    if weights is not None:
        return float(weights[part].sum() / weights.sum())
    return (part.stop - part.start) / timesteps


@torch.no_grad()
def _frozen_prediction(
    unet: UNet2DConditionModel,
    dtype: torch.dtype,
    cond: _Batch,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    per_pass: int,
) -> torch.Tensor:
    """The U-Net's prediction for `cond` on `noisy`, in passes of `per_pass` (fp32)."""
    parts = []
    for start in range(0, noisy.shape[0], per_pass):
        part = slice(start, start + per_pass)
        text, added = unet_inputs(cond, noisy[part].shape[0], dtype)
        out = unet(
            noisy[part].to(dtype),
            timesteps[part],
            encoder_hidden_states=text,
            added_cond_kwargs=added,
        )
        parts.append(out.sample.float())
    return torch.cat(parts)


def _pass(
    unet: UNet2DConditionModel,
    dtype: torch.dtype,
    batch: _Batch,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None,
    share: float,
    last: bool,
    prior_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Forward and backward of one pass; its graph is gone when this returns, so passes
    never hold two sets of activations at once. With `prior_target` the pass also runs the
    samples with the prior's conditioning (one U-Net call for both halves)."""
    n = noisy.shape[0]
    text, added = unet_inputs(batch, n, dtype)
    if batch.prior is not None and prior_target is not None:
        prior_text, prior_added = unet_inputs(batch.prior, n, dtype)
        text = torch.cat([text, prior_text])
        if added is not None and prior_added is not None:
            added = {k: torch.cat([v, prior_added[k]]) for k, v in added.items()}
        noisy, timesteps = torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps])
    pred = unet(noisy.to(dtype), timesteps, encoder_hidden_states=text, added_cond_kwargs=added)
    pred = pred.sample
    loss = masked_mse(pred[:n].float(), target, weights)
    if prior_target is not None:
        loss = loss + batch.prior_weight * F.mse_loss(pred[n:].float(), prior_target)
    if share != 1.0:
        loss = loss * share
    # The hypernetwork's part of the graph is shared by the passes: keep it for the next one.
    loss.backward(retain_graph=not last)
    return loss.detach()


def training_scheduler(model: BaseModel) -> DDPMScheduler:
    """The noise schedule tuning draws from: the model's own, so its prediction type and, for
    a zero-terminal-SNR model, the rescaled betas (the last timestep is pure noise, its
    v-target the negated latents) are what the model was trained with."""
    return DDPMScheduler.from_config(model.pipe.scheduler.config)


def unet_inputs(
    batch: _Batch, n: int, dtype: torch.dtype
) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """The conditioning of `batch` for `n` samples in `dtype` (expanded views, no copies)."""
    text = batch.text.to(dtype).expand(n, -1, -1)  # (n, T, D)
    if not batch.added:
        return text, None
    return text, {k: v.to(dtype).expand(n, *v.shape[1:]) for k, v in batch.added.items()}


def _noisy_samples(
    batch: _Batch,
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    n: int,
    device: torch.device,
    window: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """n random (view, timestep, noise) draws: noisy latents, timesteps, targets, weights.
    Timesteps are drawn from `window` [low, high), by default all of them."""
    views = torch.randint(0, batch.latents.shape[0], (n,), generator=sampler).to(device)
    low, high = window or (0, noise_scheduler.config.num_train_timesteps)
    timesteps = torch.randint(low, high, (n,), generator=sampler)
    x0 = batch.latents[views]  # (n, C, h, w)
    noise = torch.randn(x0.shape, generator=sampler).to(device)
    timesteps = timesteps.to(device)
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(x0, noise, timesteps)
    else:
        target = noise
    weights = None if batch.weights is None else batch.weights[views]
    return noisy, timesteps, target, weights


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
    size: int,
    cancel: CancelToken,
) -> Image.Image:
    """A low-step render of `prompt` (the kind's probe) with the current offsets at the
    strength they will be saved with (fixed seed)."""
    set_terms(wrappers, [(hyper(), float(settings.strength))], model.placement.dtype)
    return render_probe(model, prompt, settings, size, cancel)


def render_probe(
    model: BaseModel, prompt: str, settings: TuningSettings, size: int, cancel: CancelToken
) -> Image.Image:
    """A preview's render of `prompt` with whatever offsets are set: DDIM, the settings'
    preview steps, guidance 5 and seed; stops between steps when `cancel` is set."""
    pipe = pipeline_with_scheduler(
        model.pipe, DDIMScheduler.from_config(model.pipe.scheduler.config)
    )

    def stop_if_cancelled(
        _pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        cancel.check()
        return kwargs

    latents = pipe(
        prompt,
        height=size,
        width=size,
        num_inference_steps=settings.preview_steps,
        guidance_scale=5.0,
        generator=generator_for(model.placement.device, settings.seed),
        output_type="latent",
        callback_on_step_end=stop_if_cancelled,
    ).images
    return decode_latents(model, latents)[0]
