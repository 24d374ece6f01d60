"""The attribute benchmark's probes patch the tuning loop and the prompts only while they
run, and patch them as they say."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import ostaf.method.tuning as tuning
from bench.attribute_probes import compare, cosine_rate, placeholder_twice
from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_bench import Record
from ostaf.world.attribute_cases import Case, cases, reference_caption, references

WITHOUT = "hypernetwork-lr0.0003-strength1-emb0"  # the probes' baseline


def test_cosine_rate_decays_every_group_to_zero_over_the_run_and_then_unpatches() -> None:
    made = tuning.make_optimizer
    weights, word = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    with cosine_rate(4):
        optimizer = tuning.make_optimizer(
            [{"params": [weights]}, {"params": [word], "lr": 1e-2}], 1e-3
        )
        rates = []
        for _ in range(4):
            (weights.sum() + word.sum()).backward()
            optimizer.step()
            rates.append([group["lr"] for group in optimizer.param_groups])
    assert tuning.make_optimizer is made
    # Halfway: half of each group's own rate; at the end: nothing.
    assert rates[1] == pytest.approx([5e-4, 5e-3], abs=1e-12)
    assert rates[-1] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert all(a[0] > b[0] for a, b in itertools.pairwise(rates))


def test_placeholder_twice_writes_the_token_for_colour_and_pattern_then_unpatches() -> None:
    kind = AttributeKind.APPEARANCE
    scene = references(kind, 1)[0]
    case = cases(scene, kind, 1, seed=7)[0]
    once = case.prompt("token", "sks")
    with placeholder_twice(300):
        twice = case.prompt("token", "sks")
        described = reference_caption(scene, kind, "{token}")
        shape_case = Case(scene, AttributeKind.SHAPE, case.expected, 0)
        assert shape_case.prompt("token", "sks").count("sks") == 1  # other kinds as they were
    assert twice == once.replace("a sks ", "a sks sks ", 1) and twice.startswith("a sks sks ")
    assert described.startswith("a {token} {token} ")
    assert case.prompt("token", "sks") == once


def _write(folder: Path, variant: str, reference: int, seed: int, joints: list[float]) -> None:
    scores = [
        {"transfer": j, "fidelity": 1.0, "joint": j, "leakage": 0.0, "shape_iou": 0.0}
        for j in joints
    ]
    name = f"appearance-{reference}.json" if seed < 0 else f"appearance-{reference}-s{seed}.json"
    record = Record(
        variant, "appearance", reference, seed, 1.0, 0.1, {"0" if seed < 0 else "1": scores}
    )
    (folder / variant).mkdir(parents=True, exist_ok=True)
    (folder / variant / name).write_text(json.dumps(asdict(record)))


def test_compare_pairs_a_probe_with_the_benchmark_on_the_tunings_both_have(tmp_path: Path) -> None:
    for reference, (untuned, default, probe) in enumerate([(0.0, 0.5, 1.0), (0.5, 0.5, 0.5)]):
        _write(tmp_path, "untuned-sks", reference, -1, [untuned] * 2)
        _write(tmp_path, WITHOUT, reference, 0, [default] * 2)
        _write(tmp_path, WITHOUT, reference, 1, [0.0] * 2)  # the probe has no seed 1
        _write(tmp_path, "hypernetwork", reference, 0, [0.0] * 2)  # not what cosine changes
        _write(tmp_path / "probe-cosine", WITHOUT, reference, 0, [probe] * 2)
    lines = compare("cosine", tmp_path)
    assert lines[0] == (
        "cosine (hypernetwork-lr0.0003-strength1-emb0) vs hypernetwork-lr0.0003-strength1-emb0: "
        "2 references, tuning seeds [0]"
    )
    joint = next(line for line in lines if line.strip().startswith("joint"))
    assert joint.split() == ["joint", "75.0", "vs", "50.0:", "+25.0", "[+0.0,", "+50.0]"]
    # Lift over the benchmark's untuned renders (the probe keeps its prompts): 50 and 25.
    lift = next(line for line in lines if line.strip().startswith("lift"))
    assert lift.split()[1:4] == ["50.0", "vs", "25.0:"]
