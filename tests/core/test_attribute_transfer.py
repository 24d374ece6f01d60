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
MIN_LIFT = 2 / PROMPTS  # two more of the six pictures right than untuned


@pytest.fixture(scope="module")
def bench(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return Bench(tmp_path_factory.mktemp("attribute-bench"), demo, log=lambda _: None)


def _run(bench: Bench, kind: AttributeKind) -> tuple[Record, Record]:
    scene = references(kind, 1)[0]
    try:
        untuned = bench.untuned(DEFAULT_TOKEN, kind, 0, scene, PROMPTS)
        tuned = bench.record(Variant(steps=STEPS), kind, 0, scene, PROMPTS)
        return untuned, tuned
    finally:
        bench.model.merger.restore()


def _mean(record: Record, key: str, metric: str) -> float:
    return mean(row[metric] for row in record.scores[key])


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_tuning_lifts_the_joint_score_of_every_kind(bench: Bench, kind: AttributeKind) -> None:
    untuned, tuned = _run(bench, kind)
    before, after = _mean(untuned, "0", "joint"), _mean(tuned, "1", "joint")
    assert after >= before + MIN_LIFT, (kind, before, after)
    assert _mean(tuned, "1", "transfer") >= _mean(untuned, "0", "transfer")
    assert _mean(tuned, "1", "leakage") < 0.5


def test_cached_results_are_reused(bench: Bench, demo: BaseModel) -> None:
    first = _run(bench, AttributeKind.SHAPE)
    again = Bench(bench.cache, demo, log=pytest.fail)  # tuning again would log and fail
    assert _run(again, AttributeKind.SHAPE) == first
    assert (Path(bench.cache) / "references" / "shape-0.png").is_file()
