"""The speed-ups keep results: batched timesteps equal separate passes, merging re-uses what is
merged and never reloads, CPU jobs run with one core left free."""

from __future__ import annotations

import os

import pytest
import torch

from ostaf.errors import AttributeFileError
from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.method.offsets import OffsetMerger, offset_layers, target_layers
from ostaf.method.regions import REGION_BY_KIND, AttributeKind
from ostaf.method.tuning import _Batch, _step
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import Placement, cpu_job_threads, use_job_threads

CPU = Placement(torch.device("cpu"), torch.float32)


def _batch(model: BaseModel, masked: bool) -> _Batch:
    g = torch.Generator().manual_seed(1)
    size = model.resolution // int(model.pipe.vae_scale_factor)
    weights = None
    if masked:
        weights = torch.zeros(2, 1, size, size)
        weights[..., : size // 2] = 1.0
        weights[1, ..., :2] = 0.25
    latents = torch.randn(2, 4, size, size, generator=g)
    return _Batch(latents, weights, torch.randn(1, 77, 64, generator=g))


def _loss_and_grads(
    model: BaseModel, batch: _Batch, per_pass: int, kind: AttributeKind
) -> tuple[float, list[torch.Tensor]]:
    paths = REGION_BY_KIND[kind].select(n for n, _ in model.unet.named_modules())
    torch.manual_seed(0)
    hyper = Hypernetwork(target_layers(model.unet, paths), HypernetworkConfig())
    for head in hyper.up_heads.values():  # non-zero offsets, so every factor has a gradient
        assert isinstance(head, torch.nn.Linear)
        torch.nn.init.normal_(head.weight, std=0.02)
    sampler = torch.Generator().manual_seed(5)
    with offset_layers(model.unet, paths) as wrappers:
        loss = _step(
            model.unet, CPU, hyper, wrappers, batch, model.pipe.scheduler, sampler, 4, per_pass
        )
    return float(loss), [p.grad.clone() for p in hyper.parameters() if p.grad is not None]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kind", [AttributeKind.APPEARANCE, AttributeKind.SHAPE])
def test_timesteps_in_one_pass_give_the_loss_and_gradient_of_separate_passes(
    model: BaseModel, masked: bool, kind: AttributeKind
) -> None:
    batch = _batch(model, masked)
    together, grads = _loss_and_grads(model, batch, 4, kind)
    for per_pass in (1, 3):
        apart, apart_grads = _loss_and_grads(model, batch, per_pass, kind)
        assert apart == pytest.approx(together, rel=1e-5)
        assert len(apart_grads) == len(grads)
        for a, b in zip(apart_grads, grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def _factors(model: BaseModel, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    paths = REGION_BY_KIND[AttributeKind.APPEARANCE].select(
        n for n, _ in model.unet.named_modules()
    )
    torch.manual_seed(seed)
    hyper = Hypernetwork(target_layers(model.unet, paths), HypernetworkConfig())
    for head in hyper.up_heads.values():
        assert isinstance(head, torch.nn.Linear)
        torch.nn.init.normal_(head.weight, std=0.05)
    with torch.no_grad():
        return {p: (a.clone(), b.clone()) for p, (a, b) in hyper().items()}


def test_changing_lambda_re_merges_in_place_and_reloads_nothing(model: BaseModel) -> None:
    unet = model.unet
    base = {n: p.detach().clone() for n, p in unet.named_parameters()}
    storage = {n: p.data_ptr() for n, p in unet.named_parameters()}
    factors = _factors(model, 1)
    model.merger.apply([(factors, 0.8)])
    path = next(iter(factors))
    weight = unet.get_submodule(path).weight
    at_08 = weight.detach().clone()
    model.merger.apply([(factors, 0.8)])  # the same attribute again: nothing to do
    assert torch.equal(weight, at_08)
    model.merger.apply([(factors, 1.6)])
    assert not torch.equal(weight, at_08)
    model.merger.apply([(factors, 0.8)])
    torch.testing.assert_close(weight, at_08, rtol=0, atol=1e-6)  # merged from the base
    assert all(p.data_ptr() == storage[n] for n, p in unet.named_parameters())
    model.merger.restore()
    assert all(torch.equal(p, base[n]) for n, p in unet.named_parameters())


def test_merging_another_attribute_restores_the_layers_it_does_not_touch(
    model: BaseModel,
) -> None:
    unet = model.unet
    first = _factors(model, 2)
    second = {p: f for i, (p, f) in enumerate(_factors(model, 3).items()) if i % 2 == 0}
    base = {p: unet.get_submodule(p).weight.detach().clone() for p in first}
    model.merger.apply([(first, 1.0)])
    model.merger.apply([(second, 1.0)])
    for path in first:
        weight = unet.get_submodule(path).weight
        assert torch.equal(weight, base[path]) == (path not in second)
    assert model.merger.merged_paths == sorted(second)


def test_merge_refuses_weights_that_overflow_half_precision() -> None:
    layer = torch.nn.Linear(8, 8).half()
    unet = torch.nn.Sequential()
    unet.add_module("proj", layer)
    base = layer.weight.detach().clone()
    merger = OffsetMerger(unet)
    factors = {"proj": (torch.full((8, 1), 300.0), torch.full((1, 8), 300.0))}  # ΔW = 9e4
    with pytest.raises(AttributeFileError, match="non-finite weights in proj"):
        merger.apply([(factors, 1.0)])
    assert torch.equal(layer.weight, base)
    assert merger.merged_paths == []


def test_cpu_jobs_leave_a_core_free(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OSTAF_CPU_THREADS", "1")
        assert cpu_job_threads() == 1
        use_job_threads(torch.device("cpu"))
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("OSTAF_CPU_THREADS")
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        torch.set_num_threads(2)
        use_job_threads(torch.device("cpu"))  # the user's own choice is kept
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
    finally:
        torch.set_num_threads(before)
    if hasattr(os, "sched_getaffinity"):
        assert cpu_job_threads() == max(1, len(os.sched_getaffinity(0)) - 1)


def test_render_pipelines_are_kept_warm_and_go_with_their_model() -> None:
    import gc
    import weakref

    from ostaf.models.base_model import load_base_model
    from ostaf.render.rendering import pipeline_for

    model = load_base_model("demo", device="cpu")  # its own copy: the test lets it go
    first = pipeline_for(model, "ddim")
    assert pipeline_for(model, "ddim") is first
    assert pipeline_for(model, "euler") is not first
    unet = weakref.ref(model.unet)
    del model, first
    gc.collect()
    assert unet() is None
