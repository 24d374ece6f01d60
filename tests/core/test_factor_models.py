"""The benchmark's factor models and its tunes shared across strengths: the hypernetwork with
per-layer gains starts as the plain hypernetwork and scales each layer's columns of A; variants
that differ only in strength are tuned once and saved at their own strengths."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig, TargetLayer
from ostaf.method.regions import AttributeKind
from ostaf.models.base_model import BaseModel
from ostaf.world.attribute_bench import Bench, Variant
from ostaf.world.attribute_cases import references
from ostaf.world.plain_lora import GAIN_SCALE, GainedHypernetwork

TARGETS = [
    TargetLayer("up.0.attn1.to_q", 8, 8),
    TargetLayer("up.0.attn2.to_k", 8, 6),
    TargetLayer("up.1.attn1.to_q", 8, 8),
]


def _trained_like(model: torch.nn.Module) -> None:
    """Non-zero up heads, as after some tuning steps (A is zero at the start)."""
    with torch.no_grad():
        for head in model.up_heads.values():
            head.weight.normal_()


def test_gains_start_at_one_and_scale_each_layers_columns_of_a() -> None:
    config = HypernetworkConfig(rank=2)
    torch.manual_seed(0)
    plain = Hypernetwork(TARGETS, config)
    torch.manual_seed(0)
    gained = GainedHypernetwork(TARGETS, config)
    _trained_like(plain)
    gained.load_state_dict({**plain.state_dict(), "log_gains": gained.log_gains.detach()})
    before, after = plain(), gained()
    for path, (a, b) in before.items():
        assert torch.equal(after[path][0], a) and torch.equal(after[path][1], b)
    with torch.no_grad():
        gained.log_gains[1, 0] = math.log(2.0) / GAIN_SCALE
    doubled = gained()["up.0.attn2.to_k"][0]
    original = before["up.0.attn2.to_k"][0]
    torch.testing.assert_close(doubled[:, 0], 2 * original[:, 0])
    assert torch.equal(doubled[:, 1], original[:, 1])
    assert torch.equal(gained()["up.1.attn1.to_q"][0], before["up.1.attn1.to_q"][0])


def test_variants_that_differ_only_in_strength_share_one_tune(
    demo: BaseModel, tmp_path: Path
) -> None:
    messages: list[str] = []
    bench = Bench(tmp_path, demo, log=messages.append)
    kind = AttributeKind.APPEARANCE
    scene = references(kind, 1)[0]
    full, half, word = (Variant(steps=2, strength=s) for s in (1.0, 0.5, 0.0))
    for variant in (full, half, word, Variant(method="lora", steps=2, strength=1.0)):
        bench._tune(variant, kind, 0, scene, 0)
    # One tune for the three hypernetwork strengths, one for the plain LoRA.
    tuned_keys = [m.split()[1] for m in messages if m.startswith("tuning")]
    assert tuned_keys == [full.key, "lora-steps2-strength1"]
    tuned, halved, alone = (bench._attribute(v, kind, 0, 0) for v in (full, half, word))
    for path, (a, b) in tuned.factors.items():
        assert torch.equal(halved.factors[path][0], a * 0.5)
        assert torch.equal(halved.factors[path][1], b)
        assert not alone.factors[path][0].any()
    assert tuned.shifts and all(torch.equal(halved.shifts[k], v) for k, v in tuned.shifts.items())
    assert (halved.meta.tuning["strength"], alone.meta.tuning["strength"]) == (0.5, 1.0)
