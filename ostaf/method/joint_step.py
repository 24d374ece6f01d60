"""One step of learning several kinds together: the samples, and one U-Net pass over them
with each kind's offsets on its own region and samples (ostaf.method.decompose).

A kind's offsets act only on the samples its single run would see: inside its share of the
timesteps (shape: the noisy half), and only on the unmirrored reference when it refuses flips
(shape). Elsewhere they are left out of the sample (gated), so shape never learns the detail
end of the schedule or a mirrored pose, and appearance and style learn the detail end without
shape's offsets, as they do alone. The timesteps are drawn stratified over the range of all
kinds (one in each of `timesteps_per_step` equal slices), so each kind sees its share at an
even spread every step: with four per step shape gets two (its single run gets four, at the
same step count; gating the shared samples costs nothing, drawing shape its own four would
double the U-Net's work), appearance and style all four. A sample in shape's half shows the
reference unmirrored, so shape learns from both; appearance and style see a mirror on a
quarter of the samples instead of half. Kinds that see the same samples draw them exactly as
a single run does (`tuning._noisy_samples`), so one kind alone is its single run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel

from ostaf.method.offsets import Factors, OffsetLinear
from ostaf.method.regions import AttributeKind, Region
from ostaf.method.tuning import (
    Tuned,
    _Batch,
    _frozen_prediction,
    _noisy_samples,
    masked_mse,
    pass_share,
    unet_inputs,
)
from ostaf.models.base_model import BaseModel
from ostaf.requests import TuningSettings


class GatedOffsetLinear(OffsetLinear):
    """An offset wrapper whose terms may each act on some samples of the batch only: a gate
    per term, (batch,) of 0/1, or None for every sample."""

    def __init__(self, base_layer: torch.nn.Linear) -> None:
        super().__init__(base_layer)
        self.gates: list[torch.Tensor | None] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if all(gate is None for gate in self.gates):
            return super().forward(x)  # the single run's own arithmetic
        y = self.base_layer(x)
        for (scaled_a, b), gate in zip(self.terms, self.gates, strict=True):
            up = F.linear(F.linear(x, b.to(x.dtype)), scaled_a.to(x.dtype))  # (B, …, out)
            if gate is not None:
                up = up * gate.to(up.dtype).view(-1, *([1] * (up.dim() - 1)))
            y = y + up
        return y


def set_gated_terms(
    wrappers: Mapping[str, OffsetLinear],
    applied: list[tuple[Factors, float, torch.Tensor | None]],
    dtype: torch.dtype | None = None,
) -> None:
    """As `offsets.set_terms`, each term with its gate over the batch (None: all samples);
    a term at λ = 0 or with a gate of zeros is left out."""
    for wrapper in wrappers.values():
        wrapper.terms = []
        if isinstance(wrapper, GatedOffsetLinear):
            wrapper.gates = []
    for factors, lam, gate in applied:
        if lam == 0.0 or (gate is not None and not bool(gate.any())):
            continue
        if gate is not None and bool(gate.all()):
            gate = None
        for path, (a, b) in factors.items():
            scaled_a = a * (float(lam) / a.shape[1])
            if dtype is not None:
                scaled_a, b = scaled_a.to(dtype), b.to(dtype)
            wrapper = wrappers[path]
            wrapper.terms.append((scaled_a, b))
            if isinstance(wrapper, GatedOffsetLinear):
                wrapper.gates.append(gate)
            elif gate is not None:
                raise TypeError(f"{path} cannot gate its offsets")


@dataclass
class Member:
    """One kind of a run that learns several: its settings, where it acts, what it learns."""

    settings: TuningSettings
    region: Region
    paths: list[str]
    window: tuple[int, int]  # the timesteps [low, high) its offsets act on
    tuned: Tuned | None = None
    prior: _Batch | None = None  # the description without it (prior preservation)
    parameters: list[torch.Tensor] = field(default_factory=list)
    # Split samples only: its single run's own description, encoded once (`text`), or, when
    # its word is learned, encoded again with gradients every step (`encode`).
    text: _Batch | None = None
    encode: Callable[[], _Batch] | None = None

    @property
    def kind(self) -> AttributeKind:
        return AttributeKind(self.settings.kind)

    @property
    def flips(self) -> bool:
        return self.settings.flips()

    def learnt(self) -> Tuned:
        if self.tuned is None:
            raise RuntimeError(f"the {self.kind} member has not been set up")
        return self.tuned


def own_views(batch: _Batch, member: Member) -> _Batch:
    """`batch` with the views `member`'s single run samples: the mirror too when it flips."""
    kept = batch.latents.shape[0] if member.flips else 1
    return dataclasses.replace(
        batch,
        latents=batch.latents[:kept],
        weights=None if batch.weights is None else batch.weights[:kept],
    )


def draw_samples(
    batch: _Batch,
    members: list[Member],
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    n: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, list[torch.Tensor]]:
    """n samples of the step (noisy latents, timesteps, targets, loss weights) and, per
    member, which of them it acts on (n,) bool."""
    windows = {m.window for m in members}
    flips = {m.flips for m in members}
    if len(windows) == 1 and len(flips) == 1:
        # The kinds see the same samples: drawn exactly as a single run draws them.
        noisy, t, target, weights = _noisy_samples(
            own_views(batch, members[0]), noise_scheduler, sampler, n, device, members[0].window
        )
        everywhere = torch.ones(n, dtype=torch.bool, device=device)
        return noisy, t, target, weights, [everywhere for _ in members]
    # Stratified: one timestep in each of n equal slices of the kinds' range (see the module
    # docstring), so a kind with a part of the range gets its share every step.
    low = min(m.window[0] for m in members)
    high = max(m.window[1] for m in members)
    views = torch.randint(0, batch.latents.shape[0], (n,), generator=sampler)
    spread = (torch.arange(n) + torch.rand(n, generator=sampler)) * ((high - low) / n)
    timesteps = (low + spread.floor().long()).clamp(low, high - 1)
    inside = [(timesteps >= m.window[0]) & (timesteps < m.window[1]) for m in members]
    unmirrored = torch.zeros(n, dtype=torch.bool)
    for m, where in zip(members, inside, strict=True):
        if not m.flips:
            unmirrored |= where
    views = torch.where(unmirrored, torch.zeros_like(views), views)
    active = [
        (where & (views == 0) if not m.flips else where).to(device)
        for m, where in zip(members, inside, strict=True)
    ]
    views, timesteps = views.to(device), timesteps.to(device)
    x0 = batch.latents[views]  # (n, C, h, w)
    noise = torch.randn(x0.shape, generator=sampler).to(device)
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(x0, noise, timesteps)
    else:
        target = noise
    weights = None if batch.weights is None else batch.weights[views]
    return noisy, timesteps, target, weights, active


def joint_step(
    unet: UNet2DConditionModel,
    model: BaseModel,
    members: list[Member],
    wrappers: dict[str, OffsetLinear],
    batch: _Batch,
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    n: int,
    per_pass: int,
) -> torch.Tensor:
    """Loss of one step over `n` samples, back-propagated into every kind's hypernetwork (and
    learned word); the samples go through the U-Net `per_pass` at a time, as in
    `tuning._step`, each pass once with every kind's offsets on its own samples."""
    device, dtype = model.placement.device, model.placement.dtype
    if batch.encode is not None:
        encoded = batch.encode()
        batch = dataclasses.replace(batch, text=encoded.text, added=encoded.added)
    noisy, t, target, weights, active = draw_samples(
        batch, members, noise_scheduler, sampler, n, device
    )
    keepers = [i for i, m in enumerate(members) if m.prior is not None]
    frozen: dict[int, torch.Tensor] = {}
    if keepers:
        # What the base model predicts for each keeper's description without it, on the same
        # noisy latents: its offsets are pulled towards it (prior preservation).
        set_gated_terms(wrappers, [], dtype)
        for i in keepers:
            prior = members[i].prior
            assert prior is not None
            frozen[i] = _frozen_prediction(unet, dtype, prior, noisy, t, per_pass)
    factors = [m.learnt().hyper() for m in members]
    total = torch.zeros((), device=device)
    for start in range(0, n, per_pass):
        part = slice(start, min(start + per_pass, n))
        share = pass_share(part, n, weights)
        last = part.stop == n
        on = [a[part] for a in active]
        blocks = [i for i in keepers if bool(on[i].any())]
        gates = []
        for j in range(len(members)):
            pieces = [on[j]] + [on[j] if i == j else torch.zeros_like(on[j]) for i in blocks]
            gates.append(torch.cat(pieces))
        set_gated_terms(wrappers, [(f, 1.0, g) for f, g in zip(factors, gates, strict=True)], dtype)
        total += joint_pass(
            unet,
            dtype,
            batch,
            [(members[i], frozen[i][part], on[i]) for i in blocks],
            noisy[part],
            t[part],
            target[part],
            None if weights is None else weights[part],
            share,
            last,
        )
    return total


def joint_pass(
    unet: UNet2DConditionModel,
    dtype: torch.dtype,
    batch: _Batch,
    keepers: list[tuple[Member, torch.Tensor, torch.Tensor]],
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None,
    share: float,
    last: bool,
) -> torch.Tensor:
    """Forward and backward of one pass (`tuning._pass` with a block of samples per kind that
    keeps the prompt: (keeper, its frozen prediction, the samples it acts on))."""
    size = noisy.shape[0]
    text, added = unet_inputs(batch, size, dtype)
    texts, extras = [text], [added]
    for member, _, _ in keepers:
        assert member.prior is not None
        prior_text, prior_added = unet_inputs(member.prior, size, dtype)
        texts.append(prior_text)
        extras.append(prior_added)
    copies = len(texts)
    if copies > 1:
        text = torch.cat(texts)
        if added is not None:
            added = {k: torch.cat([e[k] for e in extras if e is not None]) for k in added}
        noisy, timesteps = noisy.repeat(copies, 1, 1, 1), timesteps.repeat(copies)
    pred = unet(noisy.to(dtype), timesteps, encoder_hidden_states=text, added_cond_kwargs=added)
    pred = pred.sample
    loss = masked_mse(pred[:size].float(), target, weights)
    for index, (member, frozen, on) in enumerate(keepers, start=1):
        block = pred[index * size : (index + 1) * size].float()
        if not bool(on.all()):  # the samples outside the keeper's own timesteps or views
            block, frozen = block[on], frozen[on]
        loss = loss + member.settings.prior * F.mse_loss(block, frozen)
    if share != 1.0:
        loss = loss * share
    # The hypernetworks' part of the graph is shared by the passes: keep it for the next one.
    loss.backward(retain_graph=not last)
    return loss.detach()


def split_step(
    unet: UNet2DConditionModel,
    model: BaseModel,
    members: list[Member],
    wrappers: dict[str, OffsetLinear],
    batch: _Batch,
    noise_scheduler: DDPMScheduler,
    sampler: torch.Generator,
    each: int,
    per_pass: int,
) -> torch.Tensor:
    """Loss of one step in which every kind has samples of its own: `each` per kind, drawn as
    its single run draws them (its timesteps, its views), conditioned on its single run's own
    description (`Member.text`) and seen by its offsets alone. The kinds share the loop, the
    preparation and the U-Net passes, not a description: in the shared step the three words
    and the decoder's two kinds explain the same pixels together, and the fast ones (style's
    offsets) take what the slow ones (appearance's) learn alone."""
    device, dtype = model.placement.device, model.placement.dtype
    draws, texts, extras = [], [], []
    for m in members:
        own = own_views(batch, m)
        draws.append(_noisy_samples(own, noise_scheduler, sampler, each, device, m.window))
        cond = m.encode() if m.encode is not None else m.text
        assert cond is not None, "split_step needs each member's own description"
        text, added = unet_inputs(cond, each, dtype)
        texts.append(text)
        extras.append(added)
    n = each * len(members)
    noisy = torch.cat([d[0] for d in draws])
    t = torch.cat([d[1] for d in draws])
    target = torch.cat([d[2] for d in draws])
    drawn_weights = [d[3] for d in draws if d[3] is not None]
    weights = torch.cat(drawn_weights) if drawn_weights else None
    text = torch.cat(texts)
    present = [e for e in extras if e is not None]
    added = {k: torch.cat([e[k] for e in present]) for k in present[0]} if present else None
    owner = torch.arange(len(members)).repeat_interleave(each).to(device)
    factors = [m.learnt().hyper() for m in members]
    frozen: dict[int, torch.Tensor] = {}
    for i, m in enumerate(members):
        if m.prior is not None:
            rows = slice(i * each, (i + 1) * each)
            set_gated_terms(wrappers, [], dtype)
            frozen[i] = _frozen_prediction(unet, dtype, m.prior, noisy[rows], t[rows], per_pass)
    total = torch.zeros((), device=device)
    for part in _calls(owner, [m.prior is not None for m in members], per_pass):
        start = part.start
        share = pass_share(part, n, weights)
        mine = owner[part]
        rows_noisy, rows_t, rows_text = [noisy[part]], [t[part]], [text[part]]
        rows_added = [{k: v[part] for k, v in added.items()}] if added is not None else []
        gates = [[mine == j] for j in range(len(members))]
        keepers = []
        for i, m in enumerate(members):
            on = mine == i
            if m.prior is None or not bool(on.any()):
                continue
            prior_text, prior_added = unet_inputs(m.prior, int(on.sum()), dtype)
            rows_noisy.append(noisy[part][on])
            rows_t.append(t[part][on])
            rows_text.append(prior_text)
            if prior_added is not None:
                rows_added.append(prior_added)
            for j in range(len(members)):
                gates[j].append(torch.full_like(on[on], i == j))
            own_rows = torch.nonzero(on).flatten() + start - i * each
            keepers.append((m, frozen[i][own_rows], int(on.sum())))
        set_gated_terms(
            wrappers,
            [(f, 1.0, torch.cat(g)) for f, g in zip(factors, gates, strict=True)],
            dtype,
        )
        extra = (
            {k: torch.cat([r[k] for r in rows_added]) for k in rows_added[0]}
            if rows_added
            else None
        )
        size = part.stop - part.start
        pred = unet(
            torch.cat(rows_noisy).to(dtype),
            torch.cat(rows_t),
            encoder_hidden_states=torch.cat(rows_text),
            added_cond_kwargs=extra,
        ).sample
        loss = masked_mse(
            pred[:size].float(), target[part], None if weights is None else weights[part]
        )
        at = size
        for member, kept_frozen, count in keepers:
            block = pred[at : at + count].float()
            loss = loss + member.settings.prior * F.mse_loss(block, kept_frozen) * count / size
            at += count
        # Each kind's loss is the mean over its own samples, as in its single run.
        loss = loss * (len(members) * share)
        loss.backward(retain_graph=part.stop != n)
        total += loss.detach()
    return total


def _calls(owner: torch.Tensor, keeps: list[bool], per_pass: int) -> list[slice]:
    """The samples of each U-Net call: as many as fit in the rows a shared pass may use
    (`per_pass` samples and a copy of each for every kind that keeps the prompt), counting a
    copy only for the samples of a kind that keeps it."""
    budget = per_pass * (1 + sum(keeps))
    calls, start, rows = [], 0, 0
    for index, who in enumerate(owner.tolist()):
        need = 2 if keeps[who] else 1
        if rows + need > budget and index > start:
            calls.append(slice(start, index))
            start, rows = index, 0
        rows += need
    calls.append(slice(start, len(owner)))
    return calls
