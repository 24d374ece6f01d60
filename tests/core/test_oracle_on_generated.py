"""How far the oracle's style reading can be trusted on the demo model's own outputs (not on
clean scenes): 30 generated pictures labelled by eye (tests/data/generated_styles).

Measured 2026-12-02: outline-vs-not agrees on every labelled picture; the three-way reading
on 22 of 27, and every disagreement is "sketchy" read where the picture is flat with a soft
dark rim. The benchmark's style figures carry that caveat (BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ostaf.world.oracle import analyse

DATA = Path(__file__).parent.parent / "data" / "generated_styles"


def _readings() -> list[tuple[str, str | None]]:
    labels = json.loads((DATA / "labels.json").read_text())
    found = []
    for name, label in labels.items():
        if label["style"] is not None:
            found.append((label["style"], analyse(Image.open(DATA / name)).style))
    return found


def test_outline_or_not_is_read_as_labelled() -> None:
    readings = _readings()
    assert len(readings) == 27
    assert all((seen == "outline") == (wanted == "outline") for wanted, seen in readings)


def test_three_way_style_agrees_on_most_and_errs_only_towards_sketchy() -> None:
    readings = _readings()
    wrong = [(wanted, seen) for wanted, seen in readings if wanted != seen]
    assert len(wrong) <= 5, wrong
    assert all(pair == ("flat", "sketchy") for pair in wrong), wrong
