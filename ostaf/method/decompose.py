"""Learning shape, appearance and style from one reference in one run ("Learn all three").

The preparation is shared: the reference's VAE latents and the descriptions' encodings are
computed once, and one loop runs the three kinds' steps in the same U-Net passes, each kind's
offsets on its own region by its own hypernetwork. Each kind keeps what its single run has:
its learning rates, its gradient clipped on its own, its word learned or not, its strength
when saved, its prior preservation. By default (`DecomposeSettings.samples` "split") each kind
has samples of its own every step, half as many as its single run, drawn as that run draws
them and conditioned on that run's own description (`joint_step.split_step`): together the
three cost about one single run's U-Net work. With "shared" the kinds see every sample
together, on the one description with all three words (`joint_step.joint_step`); where two
kinds share layers (appearance and style, the decoder) their offsets then add.

`learn_all` with `one_pass` False runs the three ordinary runs (`ostaf.method.tuning.tune`)
one after the other instead, for the benchmark to compare.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image

from ostaf.decompose_request import ALL_KINDS, DecomposeSettings, placeholder
from ostaf.errors import SettingsError, TuningDivergedError
from ostaf.images import Reference
from ostaf.library.attribute_file import Attribute
from ostaf.library.attribute_meta import Together, TuningRecord
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.joint_step import (
    GatedOffsetLinear,
    Member,
    joint_step,
    set_gated_terms,
    split_step,
)
from ostaf.method.memory import MemoryPlan
from ostaf.method.offsets import Factors, OffsetLinear, offset_layers, target_layers
from ostaf.method.placeholder import PlaceholderShift, placeholder_ids, shifted_embeddings
from ostaf.method.previews import joint_preview_prompt
from ostaf.method.regions import (
    ATTENTIONS,
    BLOCKS,
    PROJECTIONS,
    AttributeKind,
    Region,
    prior_prompt,
    timestep_window,
    tuning_prompt,
)
from ostaf.method.tuning import (
    OOM_ADVICE,
    Tuned,
    TuningResult,
    _memory_plan,
    _prepare,
    _prepare_text,
    make_optimizer,
    render_probe,
    timestep_share,
    training_scheduler,
    tune,
    tuned_attribute,
)
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
from ostaf.models.devices import out_of_memory_as_error, use_job_threads
from ostaf.progress import CancelToken, Progress, ProgressCallback, StepClock, ignore_progress
from ostaf.requests import TuningSettings

ONE_PASS: Together = "one pass"
THREE_PASSES: Together = "three passes"


@dataclass
class DecomposeResult:
    """The three attributes (by kind), each with the run that made it, and the whole job's
    time; in one pass the three share the losses of the one loop."""

    results: dict[AttributeKind, TuningResult]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def attributes(self) -> dict[AttributeKind, Attribute]:
        return {kind: result.attribute for kind, result in self.results.items()}


def learn_all(
    model: BaseModel,
    reference: Reference,
    settings: DecomposeSettings,
    names: Mapping[AttributeKind, str] | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    checkpointing: Checkpointing | None = None,
) -> DecomposeResult:
    """Learn shape, appearance and style from `reference` (one pass, or three ordinary runs
    with `settings.one_pass` False); raise Cancelled if asked to. The three attributes record
    each other's ids. With `checkpointing` (one pass only) the run saves its state every few
    seconds and resumes a saved state of the same run."""
    settings.validate()
    names = dict(names or {})
    cancel = cancel or CancelToken()
    if settings.one_pass:
        found = _one_pass(model, reference, settings, names, progress, cancel, checkpointing)
    else:
        found = _three_passes(model, reference, settings, names, progress, cancel)
    link_together(found.attributes, ONE_PASS if settings.one_pass else THREE_PASSES)
    return found


def link_together(attributes: Mapping[AttributeKind, Attribute], how: Together) -> None:
    """Record in each attribute the library ids (content hashes) of the others learnt with it
    and how (`ONE_PASS`, `THREE_PASSES`)."""
    ids = {kind: attribute.content_hash()[:16] for kind, attribute in attributes.items()}
    for kind, attribute in attributes.items():
        others = ",".join(ids[other] for other in ALL_KINDS if other in ids and other != kind)
        tuning = TuningRecord(**attribute.meta.tuning)
        tuning["learned_with"] = others
        tuning["together"] = how
        attribute.meta = replace(attribute.meta, tuning=tuning)
        attribute.meta.validate()


def _three_passes(
    model: BaseModel,
    reference: Reference,
    settings: DecomposeSettings,
    names: Mapping[AttributeKind, str],
    progress: ProgressCallback,
    cancel: CancelToken,
) -> DecomposeResult:
    """Three ordinary runs, one per kind, reported as one job of their summed steps."""
    clock = StepClock(settings.steps)
    done = 0
    results: dict[AttributeKind, TuningResult] = {}
    for kind in ALL_KINDS:
        member = settings.members[kind]

        def report(found: Progress, before: int = done, kind: AttributeKind = kind) -> None:
            step = before + found.step
            extra = {"loss": found.loss, "preview": found.preview, "note": found.note}
            message = f"{kind.value.title()}: {found.message}" if found.message else ""
            stage = "preparing" if found.stage == "done" else found.stage
            progress(clock.report(stage, step, message=message, **extra))

        results[kind] = tune(model, reference, member, names.get(kind, ""), report, cancel)
        done += member.steps
    seconds = clock.report("done", settings.steps).elapsed_s
    notes = [note for result in results.values() for note in result.notes]
    return DecomposeResult(results, seconds, notes)


def _one_pass(
    model: BaseModel,
    reference: Reference,
    settings: DecomposeSettings,
    names: Mapping[AttributeKind, str],
    progress: ProgressCallback,
    cancel: CancelToken,
    checkpointing: Checkpointing | None,
    kinds: tuple[AttributeKind, ...] = ALL_KINDS,
) -> DecomposeResult:
    """The one loop over `kinds` (all three; fewer for tests: one kind alone is its single
    run, sample for sample)."""
    use_job_threads(model.placement.device)
    first = settings.members[kinds[0]]  # what they share (checked by validate)
    steps, n = first.steps, first.timesteps_per_step
    clock = StepClock(steps)
    model.merger.restore()  # tuning always starts from the base weights
    size = model.tuning_size(first.size)
    if reference.image.size != (size, size):
        raise SettingsError(
            f"the reference was prepared at {reference.image.width} px but tuning is at "
            f"{size} px; prepare it at the tuning size"
        )
    unet = model.unet
    noise_scheduler = training_scheduler(model)
    total_timesteps = noise_scheduler.config.num_train_timesteps
    module_paths = [name for name, _ in unet.named_modules()]
    members = []
    for kind in kinds:
        member = settings.members[kind]
        region = member.region or model.family.region(kind)
        paths = region.select(module_paths)
        if not paths:
            raise TuningDivergedError(f"the model has no attention layers in the {kind} region")
        window = timestep_window(timestep_share(member), total_timesteps)
        members.append(Member(member, region, paths, window))
    prompt = settings.prompt()
    split = settings.samples == "split"
    progress(clock.report("preparing", 0, message="Encoding the reference…"))
    with out_of_memory_as_error("preparing the reference", OOM_ADVICE):
        batch = _prepare(model, reference, prompt, any(m.flips for m in members))
        for m in members:
            if m.settings.prior:
                kept = _prior_prompt(m.settings)
                m.prior = _prepare_text(model, reference, kept)
            if split:  # a learned word is encoded again every step, with gradients
                own = _own_prompt(m.settings)
                if m.settings.embedding_rate:
                    m.encode = lambda own=own: _prepare_text(model, reference, own, grad=True)
                else:
                    m.text = _prepare_text(model, reference, own)
    cancel.check()

    plan, note = _joint_memory_plan(model, members, size)
    progress(clock.report("preparing", 0, message=note))
    cancel.check()

    device = model.placement.device
    embeddings = model.merger.embeddings
    if any(m.settings.embedding_rate for m in members):
        batch.encode = lambda: _prepare_text(model, reference, prompt, grad=True)

    def fresh() -> tuple[torch.optim.Optimizer, torch.Generator]:
        """Each kind's hypernetwork and word as its single run starts them; one optimiser
        with a group per part, at each part's own rate."""
        groups: list[dict[str, Any]] = []
        for m in members:
            s = m.settings
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s.seed)
                net = Hypernetwork(target_layers(unet, m.paths), HypernetworkConfig(rank=s.rank))
            shift = None
            groups.append({"params": list(net.to(device).parameters()), "lr": s.learning_rate})
            if s.embedding_rate:
                family = model.family
                ids = placeholder_ids(model.pipe, family.text_encoders, family.tokenizers, s.token)
                widths = {name: layer.embedding_dim for name, layer in embeddings.items()}
                shift = PlaceholderShift(ids, widths).to(device)
                rate = s.embedding_rate
                groups.append({"params": list(shift.parameters()), "lr": rate, "weight_decay": 0})
            m.tuned = Tuned(net, shift)
            m.parameters = [*net.parameters(), *(shift.parameters() if shift else ())]
        optimizer = make_optimizer(groups, first.learning_rate)
        return optimizer, torch.Generator("cpu").manual_seed(first.seed)

    optimizer, sampler = fresh()
    _check_separate_words(members)
    copies = 1 + sum(1 for m in members if m.settings.prior)
    per_pass = plan.timesteps_per_pass // copies if plan else first.timesteps_per_pass
    per_pass = max(per_pass, 1) if plan else per_pass
    per_pass = min(per_pass or n, n)
    losses: list[float] = []
    notes: list[str] = []
    first_step = 1
    key = _run_key(model, reference, settings, members)
    if checkpointing is not None:
        try:
            state = load_state(checkpointing.path)
            if state is not None and state.key == key and state.step <= steps:
                _load_members(members, state.hypernetwork)
                optimizer.load_state_dict(fit_optimizer_state(state.optimizer, optimizer))
                _own_rates(members, optimizer)  # a resumed run may lower the rates
                sampler.set_state(state.sampler)
                losses = list(state.losses)
                first_step = state.step + 1
                clock.done_before = state.step
                resumed = f"Resuming from step {state.step}"
                progress(clock.report("preparing", state.step, message=resumed, note=resumed))
        except (DamagedStateError, RuntimeError, ValueError, KeyError, TypeError) as exc:
            # Whatever was half-loaded is dropped: the run starts over exactly as a new one.
            optimizer, sampler = fresh()
            losses, first_step, clock.done_before = [], 1, 0
            moved = set_aside(checkpointing.path)
            note = (
                f"the saved state {checkpointing.path} could not be read ({exc}); it was "
                f"moved to {moved.name} and the run starts over"
            )
            notes.append(note)
            progress(clock.report("preparing", 0, message=note, note=note))
    last_save = time.perf_counter()

    def save(to: Checkpointing, step: int) -> None:
        hyper = {f"{m.kind}/{k}": v for m in members for k, v in m.learnt().state().items()}
        state = TuningState(key, step, losses, hyper, optimizer.state_dict(), sampler.get_state())
        save_state(to.path, state, to.job)

    if checkpointing is not None and first_step == 1:
        save(checkpointing, 0)  # a run that dies before its first periodic save resumes too

    demo = is_demo_source(model.source)
    probe = joint_preview_prompt(settings.words, demo)
    wants_checkpointing = first.memory_saving or (plan is not None and plan.checkpointing)
    recompute = wants_checkpointing and unet.is_gradient_checkpointing is False
    if recompute:
        unet.enable_gradient_checkpointing()
    shifts: dict[str, torch.Tensor] = {}
    for m in members:
        shift = m.learnt().shift
        shifts |= shift() if shift is not None else {}
    paths = sorted({path for m in members for path in m.paths})
    try:
        with (
            offset_layers(unet, paths, GatedOffsetLinear) as wrappers,
            shifted_embeddings(embeddings, shifts),
            out_of_memory_as_error("tuning", OOM_ADVICE),
        ):
            for step in range(first_step, steps + 1):
                # Quitting (not the user's Stop) keeps the steps done since the last save.
                if checkpointing is not None and cancel.keeps_progress and step > first_step:
                    save(checkpointing, step - 1)
                cancel.check()
                optimizer.zero_grad(set_to_none=True)
                if split:
                    loss = split_step(
                        unet,
                        model,
                        members,
                        wrappers,
                        batch,
                        noise_scheduler,
                        sampler,
                        max(1, n // 2),
                        per_pass,
                    )
                else:
                    loss = joint_step(
                        unet, model, members, wrappers, batch, noise_scheduler, sampler, n, per_pass
                    )
                value = float(loss)
                if not math.isfinite(value):
                    kept = ""
                    if checkpointing is not None and checkpointing.path.is_file():
                        kept = " (the last good state is kept: the next run resumes from it)"
                    rates = ", ".join(f"{m.kind} {m.settings.learning_rate:g}" for m in members)
                    raise TuningDivergedError(
                        f"the loss became {value} at step {step}; lower the learning rates "
                        f"(now {rates}) or use fp32 precision{kept}"
                    )
                for m in members:  # each kind's update is clipped as in its single run
                    torch.nn.utils.clip_grad_norm_(m.parameters, 1.0)
                optimizer.step()
                losses.append(value)
                if checkpointing is not None and (
                    time.perf_counter() - last_save >= checkpointing.interval_s
                ):
                    save(checkpointing, step)
                    last_save = time.perf_counter()
                preview = None
                every = first.preview_every
                if every and (step % every == 0 or step == steps):
                    preview = _preview(model, members, wrappers, probe, first, size, cancel)
                progress(clock.report("tuning", step, loss=value, preview=preview))
    finally:
        if recompute:
            unet.disable_gradient_checkpointing()
    seconds = clock.report("done", steps).elapsed_s
    results = {}
    for m in members:
        ran = TuningRecord(
            prompt=_own_prompt(m.settings) if split else prompt,
            timesteps_per_pass=per_pass,
            memory_saving=wants_checkpointing,
        )
        # What the kind tuned on: its own description when split, else the one description.
        caption = m.settings.caption if split else _recorded_caption(settings, m.kind)
        recorded = replace(m.settings, caption=caption)
        attribute = tuned_attribute(
            model, reference, recorded, m.region, m.learnt(), ran, losses, names.get(m.kind, "")
        )
        results[m.kind] = TuningResult(attribute, list(losses), seconds, plan, notes)
    return DecomposeResult(results, seconds, notes)


def _own_prompt(settings: TuningSettings) -> str:
    """The description a single run of this kind tunes on."""
    s = settings
    return tuning_prompt(s.kind, s.token, s.class_word, s.caption)


def _prior_prompt(settings: TuningSettings) -> str:
    """What prior preservation keeps for a kind: its single run's description without it."""
    s = settings
    return prior_prompt(s.kind, _own_prompt(s), s.token, s.class_word)


def _recorded_caption(settings: DecomposeSettings, kind: AttributeKind) -> str:
    """The one description as the `kind` attribute records it: its own word as {token}, the
    other kinds' as their words (so its prompt is the description tuned on)."""
    from ostaf.decompose_request import marked

    text = marked(settings.caption, settings.words).replace(placeholder(kind), "{token}")
    for other, word in settings.words.items():
        text = text.replace(placeholder(other), word)
    return text


def _check_separate_words(members: list[Member]) -> None:
    """Two kinds that learn their words must not share a token id: their shifts would add."""
    seen: dict[str, AttributeKind] = {}
    for m in members:
        shift = m.learnt().shift
        for key in shift.keys if shift is not None else ():
            if key in seen:
                raise SettingsError(
                    f"the words of {seen[key]} and {m.kind} share a token ({key}); give one "
                    "of them a word of one token of its own"
                )
            seen[key] = m.kind


def _run_key(
    model: BaseModel,
    reference: Reference,
    settings: DecomposeSettings,
    members: list[Member],
) -> str:
    """The identity of the one pass: each kind's single-run identity, the description, and
    that they learn together."""
    parts = [run_key(model, reference, m.settings, m.region) for m in members]
    parts += [settings.prompt(), ONE_PASS]
    if settings.samples != "shared":
        parts.append(settings.samples)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _load_members(members: list[Member], state: dict[str, torch.Tensor]) -> None:
    """Each kind's part of a saved state (keys "<kind>/…"); KeyError when one is missing."""
    for m in members:
        prefix = f"{m.kind}/"
        own = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        if not own:
            raise KeyError(f"the saved state holds nothing of {m.kind}")
        m.learnt().load_state(own)
    known = tuple(f"{m.kind}/" for m in members)
    stray = [k for k in state if not k.startswith(known)]
    if stray:
        raise KeyError(f"the saved state holds {stray[0]}, which this run does not learn")


def _own_rates(members: list[Member], optimizer: torch.optim.Optimizer) -> None:
    """Set every group's learning rate from the settings, in the order `fresh` made them."""
    rates = []
    for m in members:
        rates.append(m.settings.learning_rate)
        if m.settings.embedding_rate:
            rates.append(m.settings.embedding_rate)
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = rate


def _joint_memory_plan(
    model: BaseModel, members: list[Member], size: int
) -> tuple[MemoryPlan | None, str]:
    """The memory preflight of the one pass: every kind's layers, and a copy of each sample
    per kind that keeps the prompt."""
    union = Region(
        blocks=tuple(b for b in BLOCKS if any(b in m.region.blocks for m in members)),
        attentions=tuple(a for a in ATTENTIONS if any(a in m.region.attentions for m in members)),
        projections=tuple(
            p for p in PROJECTIONS if any(p in m.region.projections for m in members)
        ),
    )
    copies = 1 + sum(1 for m in members if m.settings.prior)
    first = members[0].settings
    planned = replace(
        first,
        rank=max(m.settings.rank for m in members),
        timesteps_per_step=first.timesteps_per_step * copies,
        timesteps_per_pass=first.timesteps_per_pass * copies,
        prior=0.0,
    )
    return _memory_plan(model, union, planned, size)


@torch.no_grad()
def _preview(
    model: BaseModel,
    members: list[Member],
    wrappers: dict[str, OffsetLinear],
    prompt: str,
    settings: TuningSettings,
    size: int,
    cancel: CancelToken,
) -> Image.Image:
    """A low-step render of the joint probe with every kind's offsets at the strength it will
    be saved with (fixed seed)."""
    applied: list[tuple[Factors, float, torch.Tensor | None]] = [
        (m.learnt().hyper(), float(m.settings.strength), None) for m in members
    ]
    set_gated_terms(wrappers, applied, model.placement.dtype)
    return render_probe(model, prompt, settings, size, cancel)
