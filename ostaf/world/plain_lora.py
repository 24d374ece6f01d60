"""The factor models the attribute benchmark compares with the hypernetwork: a plain LoRA (the
factors trained directly) and a hypernetwork with learned per-layer gains.

`tune` builds its factor model as `ostaf.method.tuning.Hypernetwork(targets, config)`; inside
`factor_model_tuning(cls)` that name refers to `cls`, which has the same constructor and
output, so everything else (loss, timesteps, optimiser, clipping, seeds) is identical.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from ostaf.method.hypernetwork import Hypernetwork, HypernetworkConfig, TargetLayer

# A gain's log is this multiple of its parameter, so that the optimiser's steps (the same
# learning rate as the rest) move gains within a tuning run: at 3e-4 for 300 steps a gain
# can go from 1 to e^±0.9.
GAIN_SCALE = 10.0


class PlainLora(nn.Module):
    """Per-layer factors A (out, r), zero at the start, and B (r, in); ΔW = A·B / r."""

    def __init__(self, targets: list[TargetLayer], config: HypernetworkConfig) -> None:
        super().__init__()
        if not targets:
            raise ValueError("plain LoRA needs at least one target layer")
        self.targets = list(targets)
        self.config = config
        r = config.rank
        self.up = nn.ParameterList(
            [nn.Parameter(torch.zeros(t.out_features, r)) for t in self.targets]
        )
        # Rows of B at the scale the hypernetwork's down head starts from (~1/sqrt(in)).
        self.down = nn.ParameterList(
            [
                nn.Parameter(torch.randn(r, t.in_features) / math.sqrt(t.in_features))
                for t in self.targets
            ]
        )

    def forward(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Factors per target path, as `Hypernetwork.forward` returns them."""
        return {t.path: (a, b) for t, a, b in zip(self.targets, self.up, self.down, strict=True)}


class GainedHypernetwork(Hypernetwork):
    """The hypernetwork with a learned gain per target layer and rank: each column of A_l is
    scaled by exp(GAIN_SCALE · g_l), g starting at 0, so that layers can grow or fade apart
    from what the shared trunk and heads predict for them."""

    def __init__(self, targets: list[TargetLayer], config: HypernetworkConfig) -> None:
        super().__init__(targets, config)
        self.log_gains = nn.Parameter(torch.zeros(len(self.targets), config.rank))

    def forward(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        factors = super().forward()
        gains = torch.exp(GAIN_SCALE * self.log_gains).unbind(0)
        return {
            t.path: (factors[t.path][0] * gain, factors[t.path][1])
            for t, gain in zip(self.targets, gains, strict=True)
        }


FACTOR_MODELS: dict[str, type[nn.Module]] = {
    "lora": PlainLora,
    "gains": GainedHypernetwork,
}


@contextlib.contextmanager
def factor_model_tuning(model: type[nn.Module]) -> Iterator[None]:
    """Within the context, `ostaf.method.tuning.tune` trains the factors of `model`."""
    import ostaf.method.tuning as tuning

    original = getattr(tuning, "Hypernetwork", None)
    if original is None:
        raise RuntimeError(
            "ostaf.method.tuning no longer builds its factors through `Hypernetwork`; "
            "update ostaf/world/plain_lora.py to the new tuning loop"
        )
    tuning.Hypernetwork = model  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        tuning.Hypernetwork = original  # type: ignore[misc]
