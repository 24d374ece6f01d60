"""The OSTAF hypernetwork: one small network that predicts low-rank weight offsets for every
target layer of a region (DESIGN §2).

    code_l + kind_emb(kind_l)            (L, D)   one learned code per target layer
      -> trunk MLP (shared by all)       (L, H)   couples the layers: smoother, less overfit
      -> per-shape heads                 A_l (out, r), B_l (r, in)
    ΔW_l = A_l · B_l / r

The up head (A) starts at zero, so ΔW = 0 at step 0 and tuning starts exactly at the base
model; the down head (B) does not, so A still receives gradient (zeroing both would leave
every gradient at zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# Kinds of projection a target can be: self/cross attention × q/k/v/out.
LAYER_KINDS = tuple(
    f"{attn}.{proj}" for attn in ("attn1", "attn2") for proj in ("to_q", "to_k", "to_v", "to_out.0")
)


@dataclass(frozen=True)
class TargetLayer:
    """One linear layer the hypernetwork writes an offset for."""

    path: (
        str  # diffusers module path, e.g. up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q
    )
    out_features: int
    in_features: int

    @property
    def kind_index(self) -> int:
        for index, kind in enumerate(LAYER_KINDS):
            if self.path.endswith(kind):
                return index
        raise ValueError(f"{self.path} is not an attention projection")

    @property
    def shape_key(self) -> str:
        return f"{self.out_features}x{self.in_features}"


@dataclass(frozen=True)
class HypernetworkConfig:
    rank: int = 4
    code_dim: int = 64
    hidden_dim: int = 128


class Hypernetwork(nn.Module):
    """Predicts (A, B) low-rank factors for each target layer from learned per-layer codes."""

    def __init__(self, targets: list[TargetLayer], config: HypernetworkConfig) -> None:
        super().__init__()
        if not targets:
            raise ValueError("the hypernetwork needs at least one target layer")
        self.targets = list(targets)
        self.config = config
        d, h, r = config.code_dim, config.hidden_dim, config.rank
        self.codes = nn.Parameter(torch.randn(len(targets), d) / math.sqrt(d))  # (L, D)
        self.kind_embedding = nn.Embedding(len(LAYER_KINDS), d)
        nn.init.normal_(self.kind_embedding.weight, std=1 / math.sqrt(d))
        self.trunk = nn.Sequential(
            nn.Linear(d, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.LayerNorm(h)
        )
        shapes = {t.shape_key: (t.out_features, t.in_features) for t in targets}
        up_heads = {k: nn.Linear(h, o * r) for k, (o, _) in shapes.items()}
        down_heads = {k: nn.Linear(h, r * i) for k, (_, i) in shapes.items()}
        for head in up_heads.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        for key, head in down_heads.items():
            # Rows of B like a LoRA down-projection: ~1/sqrt(in) so that x·Bᵀ keeps x's scale.
            fan_in = shapes[key][1]
            nn.init.normal_(head.weight, std=1 / math.sqrt(fan_in * h))
            nn.init.normal_(head.bias, std=1 / math.sqrt(fan_in))
        self.up_heads = nn.ModuleDict(up_heads)
        self.down_heads = nn.ModuleDict(down_heads)
        self.register_buffer(
            "kind_ids", torch.tensor([t.kind_index for t in targets]), persistent=False
        )
        groups: dict[str, list[int]] = {}
        for index, target in enumerate(targets):
            groups.setdefault(target.shape_key, []).append(index)
        # One gather puts each shape group's rows next to each other, so every head runs once
        # on a contiguous slice; a buffer, so it moves with the module and costs no copy a step.
        order = [index for members in groups.values() for index in members]
        self.register_buffer("group_order", torch.tensor(order), persistent=False)
        self._groups = [
            (key, [self.targets[i] for i in members]) for key, members in groups.items()
        ]

    def forward(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Factors per target path: A (out, r) and B (r, in), with ΔW = A·B / r."""
        r = self.config.rank
        hidden = self.trunk(self.codes + self.kind_embedding(self.kind_ids))  # (L, H)
        grouped = hidden[self.group_order].split([len(m) for _, m in self._groups])
        factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for (key, members), h in zip(self._groups, grouped, strict=True):  # h: (n, H)
            out_features, in_features = members[0].out_features, members[0].in_features
            ups = self.up_heads[key](h).view(len(members), out_features, r).unbind(0)
            downs = self.down_heads[key](h).view(len(members), r, in_features).unbind(0)
            for target, a, b in zip(members, ups, downs, strict=True):
                factors[target.path] = (a, b)  # A (out, r), B (r, in)
        return factors


def delta_weight(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ΔW = A·B / r, in fp32, shape (out, in)."""
    return (a.float() @ b.float()) / a.shape[1]
