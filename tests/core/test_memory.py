"""The memory preflight: what it counts, how close it is, and the settings it picks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.timing import cpu_peak
from ostaf.images import load_reference
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.memory import (
    MemoryPlan,
    activation_profile,
    estimate_tuning_memory,
    plan_tuning_memory,
    resident_bytes_of,
)
from ostaf.method.offsets import offset_layers, set_terms, target_layers
from ostaf.method.regions import REGION_BY_KIND, AttributeKind
from ostaf.method.tuning import _Batch, _step, tune
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import Placement
from ostaf.requests import TuningSettings

DECODER = REGION_BY_KIND[AttributeKind.APPEARANCE]
ENCODER = REGION_BY_KIND[AttributeKind.SHAPE]
MIB = 2**20


def _latent(model: BaseModel) -> int:
    return model.resolution // int(model.pipe.vae_scale_factor)


def _resident(model: BaseModel) -> int:
    pipe = model.pipe
    return resident_bytes_of([pipe.unet, pipe.text_encoder, pipe.vae], torch.device("cpu"))


def _plan(model: BaseModel, budget: int | None, **kw: int) -> MemoryPlan:
    return plan_tuning_memory(
        model.unet.config,
        model.resolution,
        torch.float32,
        DECODER,
        4,
        _resident(model),
        budget,
        vae_scale_factor=int(model.pipe.vae_scale_factor),
        **kw,
    )


def test_activations_grow_with_the_region_and_shrink_with_checkpointing(model: BaseModel) -> None:
    decoder = activation_profile(model.unet.config, _latent(model), torch.float32, DECODER)
    encoder = activation_profile(model.unet.config, _latent(model), torch.float32, ENCODER)
    # Encoder targets need the backward through the whole decoder as well.
    assert encoder.saved > decoder.saved > 0
    assert decoder.activations(checkpointing=True) < decoder.saved
    bigger = activation_profile(model.unet.config, 2 * _latent(model), torch.float32, DECODER)
    assert 3.5 < bigger.saved / decoder.saved < 4.5  # linear in pixels: no N×N attention kept


def test_plan_keeps_every_timestep_in_one_pass_when_there_is_room(model: BaseModel) -> None:
    plan = _plan(model, None)
    assert (plan.timesteps_per_pass, plan.checkpointing, plan.fits) == (4, False, True)
    assert "predicted peak" in plan.describe()


def test_plan_splits_the_passes_then_turns_on_memory_saving(model: BaseModel) -> None:
    """Predicted peak over the budget: fewer timesteps per pass first, then checkpointing."""
    full = _plan(model, None).estimate.total
    halved = _plan(model, full - 1)
    assert (halved.timesteps_per_pass, halved.checkpointing) == (2, False)
    assert halved.estimate.total <= full - 1
    single = _plan(model, None, timesteps_per_pass=1).estimate.total
    saving = _plan(model, single - 1)
    assert saving.checkpointing and saving.fits
    assert saving.estimate.total <= single - 1
    hopeless = _plan(model, _resident(model))
    assert not hopeless.fits and hopeless.checkpointing and hopeless.timesteps_per_pass == 1
    assert "may run out of memory" in hopeless.describe()


def test_prediction_is_close_to_the_measured_cpu_peak(model: BaseModel) -> None:
    """At the demo's size the counted activations land within 25 % of the profiler's peak."""
    placement = Placement(torch.device("cpu"), torch.float32)
    unet = model.unet
    latent = _latent(model)
    scheduler = model.pipe.scheduler
    g = torch.Generator().manual_seed(0)
    batch = _Batch(
        torch.randn(2, 4, latent, latent, generator=g), None, torch.randn(1, 77, 64, generator=g)
    )
    for region in (DECODER, ENCODER):
        profile = activation_profile(unet.config, latent, torch.float32, region)
        paths = region.select(n for n, _ in unet.named_modules())
        hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig())
        with offset_layers(unet, paths) as wrappers:

            def step(hyper: Hypernetwork = hyper, wrappers: dict = wrappers) -> None:
                hyper.zero_grad(set_to_none=True)
                _step(unet, placement, hyper, wrappers, batch, scheduler, g, 4, 4)

            step()
            measured = cpu_peak(step)
        predicted = estimate_tuning_memory(profile, 4, False, 0).step
        assert 0.75 < predicted / measured < 1.25, (region, predicted, measured)


def test_tune_applies_the_plan_within_a_set_budget(model: BaseModel, reference_png: Path) -> None:
    single = _plan(model, None, timesteps_per_pass=1).estimate.total
    saving = _plan(model, single - MIB)
    assert saving.checkpointing, "the demo's numbers no longer leave a megabyte between plans"
    budget_mb = -(-saving.estimate.total // MIB)
    assert budget_mb * MIB < single
    reference = load_reference(reference_png, model.resolution)
    settings = TuningSettings(kind=AttributeKind.APPEARANCE, steps=2, memory_budget_mb=budget_mb)
    result = tune(model, reference, settings)
    assert result.memory is not None and result.memory.checkpointing
    assert result.attribute.meta.tuning["memory_saving"] is True
    assert model.unet.is_gradient_checkpointing is False  # switched off again afterwards
    unlimited = tune(model, reference, TuningSettings(kind=AttributeKind.APPEARANCE, steps=2))
    assert unlimited.memory is not None and not unlimited.memory.checkpointing
    assert unlimited.attribute.meta.tuning["timesteps_per_pass"] == 4


def test_decoder_targets_record_nothing_in_the_encoder(model: BaseModel) -> None:
    """No backward through parts without targets: autograd saves nothing before the decoder."""
    unet = model.unet
    saved: dict[str, int] = {}
    where = ["outside"]
    handles = []
    parts = {
        "down_blocks": list(unet.down_blocks),
        "mid_block": [unet.mid_block],
        "up_blocks": list(unet.up_blocks),
    }

    def leave(*_: object) -> None:
        where.pop()  # a forward hook that returned a value would replace the output

    for label, modules in parts.items():
        for module in modules:
            handles.append(
                module.register_forward_pre_hook(lambda *_, label=label: where.append(label))
            )
            handles.append(module.register_forward_hook(leave))

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[where[-1]] = saved.get(where[-1], 0) + tensor.numel()
        return tensor

    paths = DECODER.select(n for n, _ in unet.named_modules())
    hyper = Hypernetwork(target_layers(unet, paths), HypernetworkConfig())
    x = torch.randn(2, 4, _latent(model), _latent(model))
    text = torch.randn(2, 77, 64)
    try:
        with (
            offset_layers(unet, paths) as wrappers,
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            set_terms(wrappers, [(hyper(), 1.0)])
            unet(x, torch.tensor([10, 500]), encoder_hidden_states=text).sample.mean().backward()
    finally:
        for handle in handles:
            handle.remove()
    assert saved.get("down_blocks", 0) == 0 and saved.get("mid_block", 0) == 0
    assert saved["up_blocks"] > 0


@pytest.mark.parametrize("size", [1, 3])
def test_settings_accept_pass_sizes_and_budgets(size: int) -> None:
    TuningSettings(kind=AttributeKind.STYLE, timesteps_per_pass=size, memory_budget_mb=8).validate()
