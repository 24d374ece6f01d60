"""A1111/Forge's noise schedules ("Schedule type"), so that a render with a model's own
scheduler config can name the one A1111 re-renders it with.

A1111 samples with k-diffusion over the model's discrete sigmas σ_t = √((1 − ᾱ_t)/ᾱ_t),
t = 0 … T−1, reading a fractional t by interpolating log σ. Its schedules, as
modules/sd_schedulers.py defines them (n steps, then a final 0):
- Uniform: t = T−1 … 0 in n even steps (its "Normal" is the same);
- SGM Uniform: t = T−1 … 0 in n + 1 even steps, the last left out;
- Simple: σ at step T−1−⌊x·T/n⌋, x = 0 … n−1;
- DDIM: σ at steps 1, 1 + ⌊T/n⌋, 1 + 2⌊T/n⌋, … below T, from the top (n of them only when
  ⌊T/n⌋·n reaches T − 1; else one more);
- Karras: (σ_max^(1/7) + i/(n−1)·(σ_min^(1/7) − σ_max^(1/7)))^7, i = 0 … n−1;
- Exponential: σ_max … σ_min evenly in log σ.
A render's sigmas are compared with each and the closest is named (no torch here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

Sigmas = NDArray[np.float64]
RHO = 7.0  # Karras et al.'s ρ, as k-diffusion and A1111 use it


def discrete_sigmas(alphas_cumprod: Sequence[float]) -> Sigmas:
    """σ_t of every training timestep t (increasing with t)."""
    alphas = np.asarray(alphas_cumprod, dtype=np.float64)
    return np.sqrt((1 - alphas) / alphas)


def _at(sigmas: Sigmas, t: Sigmas) -> Sigmas:
    # k-diffusion's t_to_sigma: log σ interpolated linearly between integer timesteps.
    return np.exp(np.interp(t, np.arange(len(sigmas)), np.log(sigmas)))


def _uniform(sigmas: Sigmas, n: int) -> Sigmas:
    return _at(sigmas, np.linspace(len(sigmas) - 1, 0, n))


def _sgm_uniform(sigmas: Sigmas, n: int) -> Sigmas:
    return _at(sigmas, np.linspace(len(sigmas) - 1, 0, n + 1)[:-1])


def _simple(sigmas: Sigmas, n: int) -> Sigmas:
    stride = len(sigmas) / n
    return np.array([sigmas[-(1 + int(x * stride))] for x in range(n)])


def _ddim(sigmas: Sigmas, n: int) -> Sigmas:
    stride = max(len(sigmas) // n, 1)
    return sigmas[1 : len(sigmas) : stride][::-1]


def _karras(sigmas: Sigmas, n: int) -> Sigmas:
    low, high = sigmas[0] ** (1 / RHO), sigmas[-1] ** (1 / RHO)
    return (high + np.linspace(0, 1, n) * (low - high)) ** RHO


def _exponential(sigmas: Sigmas, n: int) -> Sigmas:
    return np.exp(np.linspace(np.log(sigmas[-1]), np.log(sigmas[0]), n))


# A1111's labels, in the order ties are broken.
SCHEDULES: dict[str, Callable[[Sigmas, int], Sigmas]] = {
    "Karras": _karras,
    "Simple": _simple,
    "Uniform": _uniform,
    "SGM Uniform": _sgm_uniform,
    "DDIM": _ddim,
    "Exponential": _exponential,
}


def a1111_sigmas(label: str, steps: int, alphas_cumprod: Sequence[float]) -> Sigmas:
    """The sigmas A1111's schedule `label` samples `steps` steps with, ending in 0."""
    chosen = SCHEDULES[label](discrete_sigmas(alphas_cumprod), steps)
    return np.append(chosen, 0.0)


def nearest_a1111_schedule(used: Sequence[float], alphas_cumprod: Sequence[float]) -> str:
    """The label of A1111's schedule closest to the sigmas a render used (ending in 0), by
    the largest difference of log σ over the steps; schedules of another length (DDIM at
    some step counts) are not candidates."""
    ours = np.asarray(used, dtype=np.float64)[:-1]
    sigmas = discrete_sigmas(alphas_cumprod)
    distances = {}
    for label, schedule in SCHEDULES.items():
        theirs = schedule(sigmas, len(ours))
        if len(theirs) == len(ours):
            distances[label] = float(np.max(np.abs(np.log(ours) - np.log(theirs))))
    return min(distances, key=lambda label: distances[label])
