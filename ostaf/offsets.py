"""Applying attributes to a U-Net without writing to its base weights (DESIGN §2).

Two ways, one result:
- `offset_layers` wraps target Linear layers (the wrapper keeps the original as
  `base_layer`, like peft) so that y = W·x + Σ λᵢ/r · Aᵢ(Bᵢ·x). Used while tuning and for
  previews: gradients reach the factors and the base weights are never touched. Leaving the
  context restores the exact original module tree.
- `OffsetMerger` writes W + Σ λᵢ·ΔWᵢ into the target layers for fast rendering (no per-step
  cost), keeping the base values of those layers aside so that changing λ never reloads the
  model and λ = 0 restores the base bit-exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ostaf.errors import AttributeFileError
from ostaf.hypernetwork import TargetLayer, delta_weight

Factors = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


class OffsetLinear(nn.Module):
    """A Linear layer plus low-rank offsets: y = base(x) + Σ λ/r · A(B x)."""

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.terms: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (A, B, λ)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        for a, b, lam in self.terms:
            if lam == 0.0:
                continue  # keeps λ = 0 bit-exact
            scale = lam / a.shape[1]
            y = y + scale * F.linear(F.linear(x, b.to(x.dtype)), a.to(x.dtype))
        return y


def target_layers(unet: nn.Module, paths: Sequence[str]) -> list[TargetLayer]:
    """Describe the Linear layers at `paths` (their shapes) for the hypernetwork."""
    layers = []
    for path in paths:
        module = unet.get_submodule(path)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{path} is not a Linear layer")
        layers.append(TargetLayer(path, module.out_features, module.in_features))
    return layers


def _parent_and_name(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent_path, _, name = path.rpartition(".")
    return (root.get_submodule(parent_path) if parent_path else root), name


@contextlib.contextmanager
def offset_layers(unet: nn.Module, paths: Sequence[str]) -> Iterator[dict[str, OffsetLinear]]:
    """Wrap the Linear layers at `paths` for the duration of the context."""
    wrappers: dict[str, OffsetLinear] = {}
    try:
        for path in paths:
            parent, name = _parent_and_name(unet, path)
            base = getattr(parent, name)
            if not isinstance(base, nn.Linear):
                raise TypeError(f"{path} is not a Linear layer (already wrapped?)")
            wrapper = OffsetLinear(base)
            setattr(parent, name, wrapper)
            wrappers[path] = wrapper
        yield wrappers
    finally:
        for path, wrapper in wrappers.items():
            parent, name = _parent_and_name(unet, path)
            setattr(parent, name, wrapper.base_layer)


def set_terms(
    wrappers: Mapping[str, OffsetLinear], applied: Sequence[tuple[Factors, float]]
) -> None:
    """Point each wrapper at the factors it should add, with their intensities."""
    for wrapper in wrappers.values():
        wrapper.terms = []
    for factors, lam in applied:
        for path, (a, b) in factors.items():
            wrappers[path].terms.append((a, b, float(lam)))


class OffsetMerger:
    """Merges λ-weighted offsets into a U-Net's target weights, reversibly."""

    def __init__(self, unet: nn.Module) -> None:
        self.unet = unet
        self._base: dict[str, torch.Tensor] = {}

    @property
    def merged_paths(self) -> list[str]:
        return sorted(self._base)

    @torch.no_grad()
    def apply(self, applied: Sequence[tuple[Factors, float]]) -> None:
        """Make the U-Net compute with W + Σ λᵢ·ΔWᵢ; an empty list restores the base."""
        deltas: dict[str, torch.Tensor] = {}
        for factors, lam in applied:
            if lam == 0.0:
                continue
            for path, (a, b) in factors.items():
                weight = self._weight(path)
                delta = delta_weight(a.to(weight.device), b.to(weight.device)) * float(lam)
                deltas[path] = deltas[path] + delta if path in deltas else delta
        self.restore()
        for path, delta in deltas.items():
            weight = self._weight(path)
            base = weight.detach().clone()
            merged = base.float() + delta
            if not torch.isfinite(merged).all():
                self._base[path] = base
                self.restore()
                raise AttributeFileError(
                    f"applying the attributes gives non-finite weights in {path}; "
                    "lower the intensity or re-tune the attribute"
                )
            self._base[path] = base
            weight.copy_(merged.to(weight.dtype))

    @torch.no_grad()
    def restore(self) -> None:
        """Put the base weights back exactly."""
        for path, base in self._base.items():
            self._weight(path).copy_(base)
        self._base.clear()

    def _weight(self, path: str) -> torch.Tensor:
        module = self.unet.get_submodule(path)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{path} is not a Linear layer")
        return module.weight
