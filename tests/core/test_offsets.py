"""Applying attributes: λ = 0 is the base model bit for bit; merging equals wrapping."""

from __future__ import annotations

import pytest
import torch

from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig, delta_weight
from ostaf.method.offsets import OffsetLinear, offset_layers, set_terms, target_layers
from ostaf.method.regions import REGION_BY_KIND, AttributeKind, Region
from ostaf.models.base_model import BaseModel


def _inputs(model: BaseModel, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    unet = model.unet
    size = unet.config.sample_size
    return {
        "sample": torch.randn((2, 4, size, size), generator=g),
        "timestep": torch.tensor([10, 700]),
        "encoder_hidden_states": torch.randn((2, 77, unet.config.cross_attention_dim), generator=g),
    }


def _random_factors(model: BaseModel, kind: AttributeKind, seed: int) -> dict:
    paths = REGION_BY_KIND[kind].select(n for n, _ in model.unet.named_modules())
    torch.manual_seed(seed)
    hyper = Hypernetwork(target_layers(model.unet, paths), HypernetworkConfig(rank=4))
    for head in hyper.up_heads.values():  # non-zero offsets
        torch.nn.init.normal_(head.weight, std=0.05)
    with torch.no_grad():
        return {p: (a.clone(), b.clone()) for p, (a, b) in hyper().items()}


@torch.no_grad()
def _out(model: BaseModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model.unet(**inputs).sample


def test_hypernetwork_starts_at_zero_offset_but_has_gradient(model: BaseModel) -> None:
    paths = REGION_BY_KIND[AttributeKind.APPEARANCE].select(
        n for n, _ in model.unet.named_modules()
    )
    hyper = Hypernetwork(target_layers(model.unet, paths), HypernetworkConfig())
    factors = hyper()
    assert all(torch.count_nonzero(delta_weight(a, b)) == 0 for a, b in factors.values())
    loss = sum((a @ b).sum() * 0 + (a * torch.randn_like(a)).sum() for a, b in factors.values())
    loss.backward()
    grads = [p.grad for p in hyper.up_heads.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_lambda_zero_is_bit_exact_with_wrappers_and_merge(model: BaseModel) -> None:
    inputs = _inputs(model)
    base = _out(model, inputs)
    factors = _random_factors(model, AttributeKind.APPEARANCE, seed=1)
    with offset_layers(model.unet, list(factors)) as wrappers:
        set_terms(wrappers, [(factors, 0.0)])
        assert torch.equal(_out(model, inputs), base)
        set_terms(wrappers, [(factors, 1.0)])
        assert not torch.allclose(_out(model, inputs), base)
    model.merger.apply([(factors, 0.0)])
    assert torch.equal(_out(model, inputs), base)
    model.merger.apply([(factors, 1.5)])
    assert not torch.allclose(_out(model, inputs), base)
    model.merger.apply([])
    assert torch.equal(_out(model, inputs), base)


def test_leaving_the_wrapper_context_restores_the_module_tree(model: BaseModel) -> None:
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    factors = _random_factors(model, AttributeKind.SHAPE, seed=2)
    with offset_layers(model.unet, list(factors)):
        assert isinstance(model.unet.get_submodule(next(iter(factors))), OffsetLinear)
    after = model.unet.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_merged_weights_match_wrapped_offsets(model: BaseModel) -> None:
    inputs = _inputs(model, seed=3)
    shape = _random_factors(model, AttributeKind.SHAPE, seed=4)
    look = _random_factors(model, AttributeKind.APPEARANCE, seed=5)
    applied = [(shape, 0.7), (look, 1.3)]
    with offset_layers(model.unet, [*shape, *look]) as wrappers:
        set_terms(wrappers, applied)
        wrapped = _out(model, inputs)
    model.merger.apply(applied)
    merged = _out(model, inputs)
    torch.testing.assert_close(merged, wrapped, rtol=1e-4, atol=1e-5)
    path = next(iter(look))
    weight = model.unet.get_submodule(path).weight
    expected = model.merger._base[path] + 1.3 * delta_weight(*look[path])
    torch.testing.assert_close(weight, expected)


def test_merge_refuses_non_finite_weights_and_keeps_the_base(model: BaseModel) -> None:
    inputs = _inputs(model)
    base = _out(model, inputs)
    factors = _random_factors(model, AttributeKind.APPEARANCE, seed=6)
    path = next(iter(factors))
    a, b = factors[path]
    factors[path] = (a * float("inf"), b)
    with pytest.raises(Exception, match="non-finite"):
        model.merger.apply([(factors, 1.0)])
    assert torch.equal(_out(model, inputs), base)


def test_region_is_data() -> None:
    names = [
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        "down_blocks.0.resnets.0.conv1",
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
        "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.0",
        "up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_out.1",
    ]
    assert REGION_BY_KIND[AttributeKind.SHAPE].select(names) == [names[0], names[2]]
    assert REGION_BY_KIND[AttributeKind.STYLE].select(names) == [names[3]]
    custom = Region(blocks=("mid_block", "up_blocks"), attentions=("attn2",), projections=("to_k",))
    assert custom.select(names) == [names[2]]
    with pytest.raises(ValueError):
        Region(blocks=("encoder",))
