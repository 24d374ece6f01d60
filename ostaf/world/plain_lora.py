"""The plain-LoRA baseline of the attribute benchmark: the same tuning loop, with the factors
trained directly instead of predicted by the hypernetwork.

`tune` builds its factor model as `ostaf.method.tuning.Hypernetwork(targets, config)`; inside
`plain_lora_tuning()` that name refers to `PlainLora`, which has the same constructor and
output, so everything else (loss, timesteps, optimiser, clipping, seeds) is identical.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from ostaf.method.hypernetwork import HypernetworkConfig, TargetLayer


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


@contextlib.contextmanager
def plain_lora_tuning() -> Iterator[None]:
    """Within the context, `ostaf.method.tuning.tune` trains plain LoRA factors."""
    import ostaf.method.tuning as tuning

    original = getattr(tuning, "Hypernetwork", None)
    if original is None:
        raise RuntimeError(
            "ostaf.method.tuning no longer builds its factors through `Hypernetwork`; "
            "update ostaf/world/plain_lora.py to the new tuning loop"
        )
    tuning.Hypernetwork = PlainLora  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        tuning.Hypernetwork = original  # type: ignore[misc]
