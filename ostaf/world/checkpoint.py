"""Resumable training state: one file per training stage, replaced atomically.

A stage saves its networks, optimiser, random-generator states and step every few hundred
steps; a run that was stopped resumes from the last save and, because every random draw
comes from the saved generators, ends with the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch


class StageCheckpoint:
    """The saved state of one training stage at `path` (a `.pt` file of tensors and numbers)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The last saved state, or None when the stage has not saved yet."""
        if not self.path.is_file():
            return None
        # Only tensors, numbers, strings and lists are saved, so no pickled code is needed.
        return dict(torch.load(self.path, map_location="cpu", weights_only=True))

    def save(self, state: dict[str, Any]) -> None:
        """Write `state` beside the old file, then replace it in one step."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        torch.save(state, temporary)
        os.replace(temporary, self.path)


def python_random_state(rng: random.Random) -> list[int]:
    """A `random.Random` state as a plain list of ints (loadable with weights_only)."""
    version, internal, _gauss = rng.getstate()  # the gauss cache: no draw here uses it
    return [version, *internal]


def restore_python_random(rng: random.Random, saved: list[int]) -> None:
    """Undo `python_random_state`."""
    rng.setstate((saved[0], tuple(saved[1:]), None))
