"""Binary morphology on small bool arrays, in plain numpy (the project does not ship scipy).

Images of the world are 64×64 when analysed, so the iterative forms here (a few dozen
array passes) take well under a millisecond each.
"""

from __future__ import annotations

import numpy as np


def dilate(mask: np.ndarray) -> np.ndarray:
    """3×3 (8-neighbour) dilation; outside the array counts as False."""
    # Separable: a 3-wide maximum along rows, then along columns.
    rows = mask.copy()
    rows[:, 1:] |= mask[:, :-1]
    rows[:, :-1] |= mask[:, 1:]
    out = rows.copy()
    out[1:] |= rows[:-1]
    out[:-1] |= rows[1:]
    return out


def erode(mask: np.ndarray) -> np.ndarray:
    """3×3 (8-neighbour) erosion; outside the array counts as False."""
    rows = mask.copy()
    rows[:, 1:] &= mask[:, :-1]
    rows[:, :-1] &= mask[:, 1:]
    rows[:, 0] = rows[:, -1] = False
    out = rows.copy()
    out[1:] &= rows[:-1]
    out[:-1] &= rows[1:]
    out[0] = out[-1] = False
    return out


def reconstruct(seed: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Every pixel of `within` connected (8-neighbour) to `seed`."""
    current = seed & within
    count = int(current.sum())
    while True:
        # Convergence is checked every few steps: the check costs as much as a step.
        for _ in range(4):
            current = dilate(current) & within
        grown = int(current.sum())
        if grown == count:
            return current
        count = grown


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` with every region not connected to the border set True."""
    border = np.zeros_like(mask)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    outside = reconstruct(border & ~mask, ~mask)
    return ~outside


def depth(mask: np.ndarray, limit: int) -> np.ndarray:
    """How many erosions each mask pixel survives, plus one (1 = the outermost ring), up to
    `limit`; 0 outside the mask. A chessboard distance to the background."""
    out = np.zeros(mask.shape, dtype=np.int32)
    current = mask
    for level in range(1, limit + 1):
        out[current] = level
        current = erode(current)
        if not current.any():
            break
    return out


def box_mean(values: np.ndarray) -> np.ndarray:
    """Mean over each 3×3 window, edges replicated; works on (H, W) or (H, W, C)."""
    values = np.asarray(values, dtype=np.float32)
    # Separable: three shifted copies along rows, then along columns.
    rows = values.copy()
    rows[1:] += values[:-1]
    rows[:-1] += values[1:]
    rows[0] += values[0]
    rows[-1] += values[-1]
    out = rows.copy()
    out[:, 1:] += rows[:, :-1]
    out[:, :-1] += rows[:, 1:]
    out[:, 0] += rows[:, 0]
    out[:, -1] += rows[:, -1]
    return out / 9.0
