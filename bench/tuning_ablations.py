"""Before/after of the tuning step's optimisations, on the decoder region."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from bench.ablations import DECODER, Ablations
from bench.architectures import meta_unet
from bench.timing import Step, Variant
from bench.tuning_steps import hypernetwork_step
from ostaf.images import load_reference
from ostaf.method.hypernetwork import Hypernetwork
from ostaf.method.offsets import OffsetLinear
from ostaf.method.regions import AttributeKind, tuning_prompt
from ostaf.method.tuning import _prepare
from ostaf.world.demo_reference import demo_reference


def cached_inputs(ctx: Ablations) -> None:
    """Latents and text embedding once per run vs encoded again every step."""
    with tempfile.TemporaryDirectory() as folder:
        path = demo_reference(Path(folder) / "reference.png")
        reference = load_reference(path, ctx.model.resolution)
    prompt = tuning_prompt(AttributeKind.APPEARANCE, "sks")
    model = ctx.model

    @contextmanager
    def every_step() -> Iterator[Step]:
        with ctx.ostaf() as step:

            def encode_then_step() -> object:
                _prepare(model, reference, prompt, True)
                return step()

            yield encode_then_step

    timings = ctx.time({"once per run": ctx.step(), "every step": every_step})
    ctx.row(
        "latents and text embedding computed once (VAE + text encoder off the loop)",
        timings,
        "once per run",
        "every step",
    )


def batched_timesteps(ctx: Ablations) -> None:
    """Four timesteps in one U-Net pass vs four passes of one (same gradient)."""
    timings = ctx.time(
        {"4 per pass": ctx.step(per_pass=4), "1 per pass": ctx.step(per_pass=1)},
        memory=True,
    )
    ctx.row("4 timesteps batched in one pass per step", timings, "4 per pass", "1 per pass")


def sdpa(ctx: Ablations) -> None:
    """PyTorch SDPA attention (diffusers' default) vs the classic attention processor."""

    def with_processor(processor: Callable[[], object]) -> Variant:
        @contextmanager
        def variant() -> Iterator[Step]:
            ctx.unet.set_attn_processor(processor())
            try:
                with ctx.ostaf() as step:
                    yield step
            finally:
                ctx.unet.set_attn_processor(AttnProcessor2_0())

        return variant

    timings = ctx.time(
        {"SDPA": with_processor(AttnProcessor2_0), "classic": with_processor(AttnProcessor)},
        memory=True,
    )
    ctx.row("SDPA attention (AttnProcessor2_0)", timings, "SDPA", "classic")


def backward_scope(ctx: Ablations) -> None:
    """Decoder targets: autograd records nothing in the encoder. 'Before' forces the whole
    U-Net into the graph (input requiring grad), as a loop that does not prune would."""
    counts = _saved_by_block(ctx)

    @contextmanager
    def whole_graph() -> Iterator[Step]:
        hook = ctx.unet.register_forward_pre_hook(_input_requires_grad, with_kwargs=True)
        try:
            with ctx.ostaf() as step:
                yield step
        finally:
            hook.remove()

    timings = ctx.time({"pruned": ctx.step(), "whole U-Net": whole_graph}, memory=True)
    ctx.row(
        "no backward through parts without targets (decoder region)",
        timings,
        "pruned",
        "whole U-Net",
        notes=f"bytes saved for backward per top-level block, decoder region: {counts}",
    )


def _saved_by_block(ctx: Ablations) -> dict[str, int]:
    """Bytes autograd saves per top-level U-Net block in one decoder-region step."""
    saved: dict[str, int] = {}
    current = ["other"]
    handles = []
    for name, module in ctx.unet.named_children():
        for child_name, child in (
            module.named_children() if name.endswith("blocks") else [("", module)]
        ):
            label = f"{name}.{child_name}" if child_name else name

            def enter(_m: object, _a: object, label: str = label) -> None:
                current.append(label)

            def leave(_m: object, _a: object, _o: object) -> None:
                current.pop()

            handles += [
                child.register_forward_pre_hook(enter),
                child.register_forward_hook(leave),
            ]
    seen: set[int] = set()
    parameters = {p.untyped_storage().data_ptr() for p in ctx.unet.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen and storage.data_ptr() not in parameters:
            seen.add(storage.data_ptr())
            saved[current[-1]] = saved.get(current[-1], 0) + storage.nbytes()
        return tensor

    try:
        with (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            ctx.ostaf() as step,
        ):
            step()
    finally:
        for handle in handles:
            handle.remove()
    return {k: v for k, v in sorted(saved.items())}


def checkpointing(ctx: Ablations) -> None:
    """Gradient checkpointing costs time: the preflight turns it on only when needed."""
    timings = ctx.time({"off": ctx.step(), "on": ctx.step(checkpointing=True)}, memory=True)
    ctx.row(
        "gradient checkpointing off unless memory requires it",
        timings,
        "off",
        "on",
        notes="'before' = checkpointing always on; compare the peak memory columns",
    )


def hypernetwork_share(ctx: Ablations) -> None:
    """What the hypernetwork costs a step whatever the resolution: its forward, backward,
    gradient clipping and AdamW, against the whole step."""
    alone = partial(hypernetwork_step, ctx.unet, ctx.placement, DECODER)
    timings = ctx.time({"hypernetwork": alone, "whole step": ctx.step()})
    ctx.row(
        "hypernetwork's fixed cost (forward, backward, clip, AdamW) vs the whole step",
        timings,
        "hypernetwork",
        "whole step",
    )


def fused_adamw(ctx: Ablations) -> None:
    """The hypernetwork's AdamW as one fused kernel vs PyTorch's default implementation, on
    the hypernetwork alone for SD 1.5's decoder targets (4.7 M parameters, ~10× a LoRA's)."""
    shapes = meta_unet("sd15")
    alone = partial(hypernetwork_step, shapes, ctx.placement, DECODER)
    timings = ctx.time({"fused": alone, "default": partial(alone, fused_optimizer=False)})
    ctx.row("fused AdamW (hypernetwork alone, SD 1.5 decoder targets)", timings, "fused", "default")


def fused_offsets(ctx: Ablations) -> None:
    """The offset added inside the up-projection's matmul (addmm) with λ/r folded into A
    once per step, vs a separate scale and add over the layer's output at every call."""

    def unfused(layer: OffsetLinear, x: torch.Tensor) -> torch.Tensor:
        y = layer.base_layer(x)
        for scaled_a, b in layer.terms:
            y = y + 1.0 * F.linear(F.linear(x, b.to(x.dtype)), scaled_a.to(x.dtype))
        return y

    timings = ctx.time(
        {"addmm": ctx.step(), "scale + add": _patched(OffsetLinear, "forward", unfused, ctx)}
    )
    ctx.row("offsets fused into addmm, λ/r folded into A", timings, "addmm", "scale + add")


def batched_heads(ctx: Ablations) -> None:
    """One gather and one call per head for each shape group, rows split by unbind, vs a
    gather per group with its index copied to the device and a view per row."""

    def per_row(hyper: Hypernetwork) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        r = hyper.config.rank
        hidden = hyper.trunk(hyper.codes + hyper.kind_embedding(hyper.kind_ids))
        groups: dict[str, list[int]] = {}
        for index, target in enumerate(hyper.targets):
            groups.setdefault(target.shape_key, []).append(index)
        factors = {}
        for key, members in groups.items():
            h = hidden[torch.tensor(members).to(hidden.device)]
            up, down = hyper.up_heads[key](h), hyper.down_heads[key](h)
            for row, index in enumerate(members):
                t = hyper.targets[index]
                factors[t.path] = (
                    up[row].view(t.out_features, r),
                    down[row].view(r, t.in_features),
                )
        return factors

    timings = ctx.time(
        {"grouped": ctx.step(), "per row": _patched(Hypernetwork, "forward", per_row, ctx)}
    )
    ctx.row("hypernetwork heads: one call per shape group", timings, "grouped", "per row")


def _patched(
    owner: type, name: str, replacement: Callable[..., Any], ablations: Ablations
) -> Variant:
    """A decoder-region step with `owner.name` replaced by the way it used to be done."""

    @contextmanager
    def variant() -> Iterator[Step]:
        original = getattr(owner, name)
        setattr(owner, name, replacement)
        try:
            with ablations.ostaf() as step:
                yield step
        finally:
            setattr(owner, name, original)

    return variant


def _input_requires_grad(
    _module: torch.nn.Module, args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[tuple[object, ...], dict[str, object]]:
    sample = args[0]
    assert isinstance(sample, torch.Tensor)
    return (sample.detach().requires_grad_(True), *args[1:]), kwargs
