"""Hooks into a real `tune()` run for the benchmarks: when each step starts, what the one-off
phases cost, and named ranges for torch's profiler. Nothing in `ostaf/` changes: module
attributes are replaced for the duration of a context and put back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import torch
from torch.autograd.profiler import record_function

from bench.timing import synchronize
from ostaf.method import tuning
from ostaf.method.hypernetwork import Hypernetwork
from ostaf.method.offsets import OffsetLinear
from ostaf.method.speed import DeferredLosses

PREFIX = "ostaf::"  # the profiler ranges this module adds
# One-off phases, timed with a device sync at both ends: (name in tuning, label).
ONE_OFF = {
    "_prepare": "prepare: VAE encode + text encoding",
    "_memory_plan": "memory preflight",
    "_preview": "preview (inline, 1 render)",
}
# Per-step phases, as profiler ranges: (owner, attribute, label).
RANGES: tuple[tuple[Any, str, str], ...] = (
    (tuning, "_noisy_samples", "noise and timesteps"),
    (tuning, "_prepare_text", "text encoding (learned word)"),
    (Hypernetwork, "forward", "hypernetwork forward"),
    (tuning, "set_terms", "offsets: fold λ/r, cast"),
    (tuning, "masked_mse", "loss"),
    (torch.nn.utils, "clip_grad_norm_", "gradient clipping"),
    (DeferredLosses, "flush", "loss read-back (host-device sync)"),
)
UNET_FORWARD = "U-Net forward"
OFFSET_TERMS = "offsets: low-rank terms (forward)"
Around = Callable[[int], AbstractContextManager[object]]


@dataclass
class RunClock:
    """Times of one tune() call: when it was called, when each step started, one-offs."""

    device: torch.device
    called: float = 0.0
    step_starts: list[float] = field(default_factory=list)
    one_off_s: dict[str, float] = field(default_factory=dict)

    def to_first_step(self) -> float:
        """Seconds from the call to the start of the first step."""
        return self.step_starts[0] - self.called

    def per_step(self, first: int, end: float) -> float:
        """Mean seconds per step from the start of step `first` (1-based) to `end`."""
        done = len(self.step_starts) - first + 1
        return (end - self.step_starts[first - 1]) / done


@contextlib.contextmanager
def watched_run(device: torch.device, around: Around | None = None) -> Iterator[RunClock]:
    """Record when tune()'s steps start and what its one-off phases take; `around(step)`
    gives a context each step runs in (a profiler window, a FLOP counter, a time limit)."""
    clock = RunClock(device)
    real_step = tuning._step

    @wraps(real_step)
    def step(*args: Any, **kwargs: Any) -> torch.Tensor:
        clock.step_starts.append(time.perf_counter())
        with around(len(clock.step_starts)) if around else nullcontext():
            return real_step(*args, **kwargs)

    patches: list[tuple[Any, str, Any]] = [(tuning, "_step", step)]
    for name, label in ONE_OFF.items():
        patches.append((tuning, name, _timed(getattr(tuning, name), label, clock)))
    with _patched(patches):
        clock.called = time.perf_counter()
        yield clock


def _timed(function: Callable[..., Any], label: str, clock: RunClock) -> Callable[..., Any]:
    @wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        synchronize(clock.device)
        start = time.perf_counter()
        with record_function(PREFIX + label):
            result = function(*args, **kwargs)
        synchronize(clock.device)
        clock.one_off_s[label] = clock.one_off_s.get(label, 0.0) + time.perf_counter() - start
        return result

    return timed


class PhaseRanges:
    """Names the parts of a tuning step for torch's profiler while started: the ranges in
    RANGES, the U-Net's forward, and inside it what the offset wrappers add to their base
    layers. Nothing is hooked while stopped, so steps outside the window run as usual."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.unet = unet
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        stack = contextlib.ExitStack()
        patches = [(o, n, _ranged(getattr(o, n), label)) for o, n, label in RANGES]
        stack.enter_context(_patched(patches))
        stack.enter_context(_module_range(self.unet, UNET_FORWARD))
        for wrapper in (m for m in self.unet.modules() if isinstance(m, OffsetLinear)):
            stack.enter_context(_module_range(wrapper, OFFSET_TERMS))
            stack.enter_context(_module_range(wrapper.base_layer, UNET_FORWARD))
        self._stack = stack

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


def _ranged(function: Callable[..., Any], label: str) -> Callable[..., Any]:
    @wraps(function)
    def ranged(*args: Any, **kwargs: Any) -> Any:
        with record_function(PREFIX + label):
            return function(*args, **kwargs)

    return ranged


@contextlib.contextmanager
def _module_range(module: torch.nn.Module, label: str) -> Iterator[None]:
    """A profiler range around every forward call of `module` (kept open by hooks)."""
    open_ranges: list[Any] = []

    def enter(*_: object) -> None:
        open_ranges.append(record_function(PREFIX + label).__enter__())

    def leave(*_: object) -> None:
        open_ranges.pop().__exit__(None, None, None)

    handles = [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _patched(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(originals):
            setattr(owner, name, value)
