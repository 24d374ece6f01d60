"""A CI-sized slice of the attribute benchmark: on a held-out reference per kind, tuning with
the app's defaults (the reference's description, the kind's region, timesteps and rate) at
the Fast preset's step count must lift the joint score (the output shows the reference's
attribute AND everything else the prompt asked) well above the untuned model's, for every
kind; a change that collapses any kind's lift fails here.

`python -m ostaf.world.attribute_bench` measures the same at the Balanced step count on many
references (BENCHMARKS.md, "Demo model and attribute benchmark")."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import pytest

from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind
from ostaf.models.base_model import BaseModel
from ostaf.requests import PRESETS
from ostaf.world.attribute_bench import Bench, Record, Variant
from ostaf.world.attribute_cases import references

PROMPTS = 6
STEPS = PRESETS["fast"].steps
# Which held-out reference each kind is checked on. Style does not transfer on every
# reference (BENCHMARKS.md): its slice watches one where the default works (the fourth, an
# outline), so that a regression shows; it does not claim that style works in general.
# Measured 2026-12-03 with the defaults of KIND_TUNING (shape at strength 0.75, style with
# prior preservation, its placeholder word learned, at 0.56), 150 steps, joint untuned ->
# tuned, read by the oracle with its local stripe test: appearance #0 0 -> 3/6, shape #0
# 0 -> 6/6, style #3 0 -> 5/6 (transfer 6/6) with style's rate at 3e-4, 0 -> 4/6 (transfer
# 6/6) at its rate since the sixth stop, 1e-3. With the old stripe test: 4/6, 5/6, 3/6.
# Appearance with its placeholder word learned and its offsets stored at 0.5 (the default
# at the seventh stop): 0 -> 6/6 (4/6 at strength 1); with its offsets at 1e-5 and strength 1
# (the default since the eighth): 0 -> 6/6 (transfer 6/6). Shape with its word learned and
# stored at 0.5 (issue 26) passes the same thresholds (2026-12-07).
REFERENCE = {AttributeKind.APPEARANCE: 0, AttributeKind.SHAPE: 0, AttributeKind.STYLE: 3}
# How many more of the six pictures must be right than untuned: below it, the lift collapsed.
MIN_LIFT = {AttributeKind.APPEARANCE: 2, AttributeKind.SHAPE: 2, AttributeKind.STYLE: 1}


@pytest.fixture(scope="module")
def bench(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(tmp_path_factory.mktemp("attribute-bench"), demo, log=lambda _: None)


def _run(bench: Bench, kind: AttributeKind) -> tuple[Record, Record]:
    index = REFERENCE[kind]
    scene = references(kind, index + 1)[index]
    try:
        untuned = bench.untuned(DEFAULT_TOKEN, kind, index, scene, PROMPTS)
        tuned = bench.record(Variant(steps=STEPS), kind, index, scene, PROMPTS)
        return untuned, tuned
    finally:
        bench.model.merger.restore()


def _mean(record: Record, key: str, metric: str) -> float:
    return mean(row[metric] for row in record.scores[key])


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_tuning_lifts_the_joint_score_of_every_kind(bench: Bench, kind: AttributeKind) -> None:
    untuned, tuned = _run(bench, kind)
    before, after = _mean(untuned, "0", "joint"), _mean(tuned, "1", "joint")
    assert after >= before + MIN_LIFT[kind] / PROMPTS, (kind, before, after)
    assert _mean(tuned, "1", "transfer") >= _mean(untuned, "0", "transfer")
    assert _mean(tuned, "1", "leakage") < 0.5


def test_cached_results_are_reused(bench: Bench, demo: BaseModel) -> None:
    first = _run(bench, AttributeKind.SHAPE)
    again = Bench(bench.cache, demo, log=pytest.fail)  # tuning again would log and fail
    assert _run(again, AttributeKind.SHAPE) == first
    assert (Path(bench.cache) / "references" / "shape-0.png").is_file()


# Combinations (issue 27): the singles above, each under a word of its own, rendered together
# on a new subject. Measured 2026-12-07 at the Fast preset, 6 prompts, joint untuned ->
# combined: appearance + shape 0 -> 5/6, appearance + style 0 -> 5/6, shape + style 3/6 ->
# 3/6 (its untuned prompt already draws the style), all three 0 -> 6/6.
COMBINED_MIN_LIFT = {"appearance+shape": 3, "all three": 3}


@pytest.mark.parametrize("group", list(COMBINED_MIN_LIFT))
def test_attributes_combined_lift_the_joint_score(bench: Bench, group: str) -> None:
    from ostaf.world.combination_bench import ComboBench, ComboPlan

    plan = ComboPlan(1, PROMPTS, (group,), variant=Variant(steps=STEPS))
    combos = ComboBench(bench.cache / "combinations", bench, log=lambda _: None)
    (record,) = combos.run(plan)
    before, after = (mean(row["joint"] for row in record.scores[key]) for key in ("0", "1"))
    assert after >= before + COMBINED_MIN_LIFT[group] / PROMPTS, (group, before, after)
    assert len(set(record.words.values())) == len(record.words)  # a word each


def test_a_prepared_reference_reaches_the_tuning_cropped_or_masked(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from ostaf.images import Reference, subject_crop
    from ostaf.method import tuning
    from ostaf.world.attribute_bench import PREPARED_PIXELS

    seen: list[Reference] = []
    real_tune = tuning.tune

    def tune(model: BaseModel, reference: Reference, *args: object, **kwargs: object) -> object:
        seen.append(reference)
        return real_tune(model, reference, *args, **kwargs)

    monkeypatch.setattr(tuning, "tune", tune)
    index, scene = 90, references(AttributeKind.APPEARANCE, 1, "users")[0]
    for prepare in ("", "cropped", "masked", "cropped+masked"):
        bench._tune(Variant(steps=2, prepare=prepare), AttributeKind.APPEARANCE, index, scene, 0)
    plain, cropped, masked, both = seen
    assert plain.mask is None and plain.original_size == (64, 64)
    # Cropped: from the larger picture, the subject's box; it fills more of the model's view.
    assert cropped.mask is None and cropped.original_size == (PREPARED_PIXELS,) * 2
    box = subject_crop(scene.mask(PREPARED_PIXELS))
    crop = bench.attribute(Variant(steps=2, prepare="cropped"), AttributeKind.APPEARANCE, index, 0)
    assert tuple(crop.meta.tuning["crop"]) == box
    left, top, right, bottom = box
    subject_share = float(scene.mask(64).mean())
    in_box = float(scene.mask(PREPARED_PIXELS)[top:bottom, left:right].mean())
    assert in_box > 2.5 * subject_share  # a small subject, large in its box
    # Masked: the loss weights are the subject's silhouette at the model's size.
    assert masked.mask is not None and masked.original_size == (64, 64)
    weights = np.asarray(masked.mask) > 127
    assert abs(float(weights.mean()) - subject_share) < 0.02
    # Both: the subject's mask, cropped with the picture, fills more of the view.
    assert both.mask is not None and both.original_size == (PREPARED_PIXELS,) * 2
    assert abs(float((np.asarray(both.mask) > 127).mean()) - in_box) < 0.03
    assert len(list((Path(bench.cache) / "tuned").glob(f"appearance-{index}-s0-*.json"))) == 4
