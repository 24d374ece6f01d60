"""How far the oracle can be trusted on the demo model's own outputs (not on clean scenes).

Style: 30 generated pictures labelled by eye (tests/data/generated_styles). Measured
2026-12-02: outline-vs-not agrees on every labelled picture; the three-way reading on 22 of
27, and every disagreement is "sketchy" read where the picture is flat with a soft dark rim.
The benchmark's style figures carry that caveat (BENCHMARKS.md).

Pattern: 96 pictures the untuned model drew when asked by name (24 per pattern), labelled by
eye; the 15 too unclear to label are left out (tests/data/generated_patterns; each with its
prompt and render seed, DDIM 25 steps, guidance 5). The first 48 were used to choose the
stripe test, the other 48 held out. Measured 2026-12-03: before the local coherence the
oracle agreed on 60 of 81 and read 13 of 18 striped pictures as something else (the model
draws wavy stripes); with it, 72 of 81 (held out: 35 of 40) and 17 of 18 striped.

A second look, taken after the stripe test was fixed and not used to change the oracle
(tests/data/second_look, labelled blind to the oracle's reading): 48 more pictures asked for
dots or checks by name (prompts of references 0-11, other seeds; 34 clear enough to label),
and pictures drawn by tuned appearance attributes at intensity 1: 48 from dotted or checkered
references (20 labelled) and 64 drawn uniformly over the benchmark's 24 references x 16
prompts x 2 tuning seeds (35 labelled; 29 show blobs or dashes no one could name).
Measured 2026-12-03: 33 of 34 named, 11 of 20 and 25 of 35 tuned. Also 32 pictures each of
the benchmark's shape and style tunings, drawn the same way: 14 of the 15 shape pictures and
24 of the 27 style pictures clear enough to label."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ostaf.world.oracle import analyse

DATA = Path(__file__).parent.parent / "data" / "generated_styles"
PATTERNS = Path(__file__).parent.parent / "data" / "generated_patterns"


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


def _pattern_readings(which: str = "") -> list[tuple[str, str | None]]:
    labels = json.loads((PATTERNS / "labels.json").read_text())
    return [
        (label["pattern"], analyse(Image.open(PATTERNS / name)).pattern)
        for name, label in labels.items()
        if not which or label["set"] == which
    ]


def test_patterns_of_generated_pictures_are_read_as_labelled() -> None:
    readings = _pattern_readings()
    assert len(readings) == 81
    assert sum(wanted == seen for wanted, seen in readings) >= 70
    held_out = _pattern_readings("held out")
    assert len(held_out) == 40
    assert sum(wanted == seen for wanted, seen in held_out) >= 34


def test_wavy_stripes_of_generated_pictures_are_read_as_stripes() -> None:
    stripes = [seen for wanted, seen in _pattern_readings() if wanted == "striped"]
    assert len(stripes) == 18
    assert stripes.count("striped") >= 16, stripes


def _second_look(which: str) -> list[tuple[str, str | None]]:
    folder = PATTERNS.parent / "second_look"
    labels = json.loads((folder / "labels.json").read_text())
    return [
        (label["pattern"], analyse(Image.open(folder / name)).pattern)
        for name, label in labels.items()
        if label["set"].startswith(which)
    ]


def test_fresh_named_dots_and_checks_are_read_as_labelled() -> None:
    readings = _second_look("named")
    assert len(readings) == 34
    assert sum(wanted == seen for wanted, seen in readings) >= 32, readings


def test_tuned_pictures_patterns_agree_on_most_clear_ones() -> None:
    readings = _second_look("appearance tunings")
    assert len(readings) == 55
    assert sum(wanted == seen for wanted, seen in readings) >= 35, readings
    uniform = _second_look("appearance tunings, uniform")
    assert len(uniform) == 35
    assert sum(wanted == seen for wanted, seen in uniform) >= 24, uniform
    shapes, styles = _second_look("shape tunings"), _second_look("style tunings")
    assert (len(shapes), len(styles)) == (15, 27)
    assert sum(wanted == seen for wanted, seen in shapes) >= 13, shapes
    assert sum(wanted == seen for wanted, seen in styles) >= 23, styles
