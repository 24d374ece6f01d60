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
from ostaf.method.hypernetwork import TargetLayer, delta_weight
from ostaf.method.placeholder import Shifts
from ostaf.method.shift_keys import split_shift_key

Factors = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


class OffsetLinear(nn.Module):
    """A Linear layer plus low-rank offsets: y = base(x) + Σ λ/r · A(B x)."""

    def __init__(self, base_layer: nn.Linear) -> None:
        super().__init__()
        self.base_layer = base_layer
        # (λ/r · A, B) per applied attribute, already in the compute dtype (see set_terms).
        self.terms: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        for scaled_a, b in self.terms:
            down = F.linear(x, b.to(x.dtype))  # (..., r)
            # addmm adds the up-projection into y inside the matmul: no separate pass over y.
            y = torch.addmm(
                y.reshape(-1, y.shape[-1]),
                down.reshape(-1, down.shape[-1]),
                scaled_a.to(x.dtype).t(),
            ).view(y.shape)
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
def offset_layers(
    unet: nn.Module, paths: Sequence[str], wrapper_type: type[OffsetLinear] = OffsetLinear
) -> Iterator[dict[str, OffsetLinear]]:
    """Wrap the Linear layers at `paths` in `wrapper_type` for the duration of the context."""
    wrappers: dict[str, OffsetLinear] = {}
    try:
        for path in paths:
            parent, name = _parent_and_name(unet, path)
            base = getattr(parent, name)
            if not isinstance(base, nn.Linear):
                raise TypeError(f"{path} is not a Linear layer (already wrapped?)")
            wrapper = wrapper_type(base)
            setattr(parent, name, wrapper)
            wrappers[path] = wrapper
        yield wrappers
    finally:
        for path, wrapper in wrappers.items():
            parent, name = _parent_and_name(unet, path)
            setattr(parent, name, wrapper.base_layer)


def set_terms(
    wrappers: Mapping[str, OffsetLinear],
    applied: Sequence[tuple[Factors, float]],
    dtype: torch.dtype | None = None,
) -> None:
    """Point each wrapper at the factors it should add, with their intensities.

    λ/r is folded into A and the factors are cast to `dtype` here, once per call, rather than
    in every layer call; a term at λ = 0 is left out, which keeps λ = 0 bit-exact."""
    for wrapper in wrappers.values():
        wrapper.terms = []
    for factors, lam in applied:
        if lam == 0.0:
            continue
        for path, (a, b) in factors.items():
            scaled_a = a * (float(lam) / a.shape[1])
            if dtype is not None:
                scaled_a, b = scaled_a.to(dtype), b.to(dtype)
            wrappers[path].terms.append((scaled_a, b))


class OffsetMerger:
    """Merges λ-weighted offsets into a U-Net's target weights, reversibly.

    Factors are treated as read-only once applied: applying the very same factor tensors at
    the same intensities again is free (nothing to re-merge between renders)."""

    def __init__(self, unet: nn.Module, embeddings: Mapping[str, nn.Embedding] | None = None):
        self.unet = unet
        # Text encoders' token embeddings, by encoder name, for placeholder shifts.
        self.embeddings = dict(embeddings or {})
        self._base: dict[str, torch.Tensor] = {}
        self._applied: list[tuple[list[tuple[str, torch.Tensor, torch.Tensor]], float]] = []
        self._base_rows: dict[str, torch.Tensor] = {}  # "<encoder>.<token id>" -> (D,)
        self._applied_shifts: list[tuple[list[tuple[str, torch.Tensor]], float]] = []

    @property
    def merged_paths(self) -> list[str]:
        return sorted(self._base)

    @torch.no_grad()
    def apply(
        self,
        applied: Sequence[tuple[Factors, float]],
        shifts: Sequence[tuple[Shifts, float]] = (),
    ) -> None:
        """Make the U-Net compute with W + Σ λᵢ·ΔWᵢ and the text encoders with their
        placeholder rows shifted by Σ λᵢ·shiftᵢ; empty lists restore the base."""
        self._apply_shifts(shifts)
        key = [(list((p, a, b) for p, (a, b) in f.items()), float(lam)) for f, lam in applied]
        if self._base and _same_terms(key, self._applied):
            return
        deltas: dict[str, torch.Tensor] = {}
        for factors, lam in applied:
            if lam == 0.0:
                continue
            for path, (a, b) in factors.items():
                weight = self._weight(path)
                delta = delta_weight(a.to(weight.device), b.to(weight.device)) * float(lam)
                deltas[path] = deltas[path] + delta if path in deltas else delta
        for path in [p for p in self._base if p not in deltas]:
            self._weight(path).copy_(self._base.pop(path))
        self._applied = []
        finite: list[torch.Tensor] = []
        for path, delta in deltas.items():
            weight = self._weight(path)
            # A layer merged already keeps its base copy: merge from it, never from W + ΔW.
            base = self._base.setdefault(path, weight.detach().clone())
            merged = (base.float() + delta).to(weight.dtype)
            finite.append(torch.isfinite(merged).all())
            weight.copy_(merged)
        # One device sync for all layers; also catches values that overflow fp16 when cast.
        if finite and not bool(torch.stack(finite).all()):
            bad = next(p for p, ok in zip(deltas, finite, strict=True) if not bool(ok))
            self.restore()
            raise AttributeFileError(
                f"applying the attributes gives non-finite weights in {bad}; "
                "lower the intensity or re-tune the attribute"
            )
        self._applied = key

    @torch.no_grad()
    def restore(self) -> None:
        """Put the base weights back exactly."""
        for path, base in self._base.items():
            self._weight(path).copy_(base)
        self._base.clear()
        self._applied = []
        for name, base in self._base_rows.items():
            self._row(name).copy_(base)
        self._base_rows.clear()
        self._applied_shifts = []

    def _apply_shifts(self, shifts: Sequence[tuple[Shifts, float]]) -> None:
        key = [(list(s.items()), float(lam)) for s, lam in shifts if lam != 0.0]
        if _same_shifts(key, self._applied_shifts):
            return
        totals: dict[str, torch.Tensor] = {}
        for items, lam in key:
            for name, vector in items:
                scaled = vector.float() * lam
                totals[name] = totals[name] + scaled if name in totals else scaled
        for name in [n for n in self._base_rows if n not in totals]:
            self._row(name).copy_(self._base_rows.pop(name))
        for name, total in totals.items():
            row = self._row(name)
            base = self._base_rows.setdefault(name, row.detach().clone())
            merged = base.float() + total.to(row.device)
            if not bool(torch.isfinite(merged).all()):
                self.restore()
                raise AttributeFileError(
                    f"applying the attributes gives a non-finite embedding for {name}; "
                    "lower the intensity or re-tune the attribute"
                )
            row.copy_(merged.to(row.dtype))
        self._applied_shifts = key

    def _row(self, name: str) -> torch.Tensor:
        encoder, token_id = split_shift_key(name)
        if encoder not in self.embeddings:
            raise KeyError(f"the model has no text encoder {encoder}")
        return self.embeddings[encoder].weight[token_id]

    def _weight(self, path: str) -> torch.Tensor:
        module = self.unet.get_submodule(path)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{path} is not a Linear layer")
        return module.weight


def _same_shifts(
    new: list[tuple[list[tuple[str, torch.Tensor]], float]],
    old: list[tuple[list[tuple[str, torch.Tensor]], float]],
) -> bool:
    """The same shift tensors (by identity) at the same intensities."""
    return len(new) == len(old) and all(
        lam == old_lam
        and len(items) == len(old_items)
        and all(n == o and v is w for (n, v), (o, w) in zip(items, old_items, strict=True))
        for (items, lam), (old_items, old_lam) in zip(new, old, strict=True)
    )


def _same_terms(
    new: list[tuple[list[tuple[str, torch.Tensor, torch.Tensor]], float]],
    old: list[tuple[list[tuple[str, torch.Tensor, torch.Tensor]], float]],
) -> bool:
    """The same factor tensors (by identity; `old` keeps them alive) at the same intensities."""
    if len(new) != len(old):
        return False
    for (terms, lam), (old_terms, old_lam) in zip(new, old, strict=True):
        if lam != old_lam or len(terms) != len(old_terms):
            return False
        for (path, a, b), (old_path, old_a, old_b) in zip(terms, old_terms, strict=True):
            if path != old_path or a is not old_a or b is not old_b:
                return False
    return True
