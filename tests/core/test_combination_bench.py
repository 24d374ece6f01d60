"""The combination benchmark's cases: prompts that use every attribute's word on a new
subject, and scores that ask for every transferred attribute and the rest of the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_cases import references
from ostaf.world.combination_bench import GROUPS, WORDS, ComboPlan, combo_cases, combo_score

APPEARANCE, SHAPE, STYLE = AttributeKind.APPEARANCE, AttributeKind.SHAPE, AttributeKind.STYLE


def _chosen(group: str) -> dict[AttributeKind, object]:
    plan = ComboPlan()
    return {k: references(k, plan.combinations)[i] for k, i in plan.indices(group, 5).items()}


@pytest.mark.parametrize("group", list(GROUPS))
def test_prompts_name_every_attribute_by_its_word_and_ask_for_the_rest(group: str) -> None:
    chosen = _chosen(group)
    cases = combo_cases(chosen, 8, seed=3)  # type: ignore[arg-type]
    assert cases == combo_cases(chosen, 8, seed=3)  # type: ignore[arg-type]
    for case in cases:
        prompt = case.prompt(WORDS)
        for kind in GROUPS[group]:
            assert f" {WORDS[kind]}" in prompt
        scene = case.expected
        if SHAPE in GROUPS[group]:
            assert scene.shape == chosen[SHAPE].shape  # type: ignore[attr-defined]
            assert f" {scene.shape}," not in prompt
        else:
            assert f" {scene.shape}," in prompt
        if APPEARANCE not in GROUPS[group]:
            assert scene.colour in prompt and scene.pattern in prompt
            for reference in chosen.values():
                assert scene.colour != reference.colour  # type: ignore[attr-defined]
        if STYLE in GROUPS[group]:
            assert f"{WORDS[STYLE]} style" in prompt
        assert prompt.endswith(f"on a {scene.background} background")


def test_joint_needs_every_transferred_attribute_and_the_rest_of_the_prompt() -> None:
    chosen = _chosen("all three")
    case = combo_cases(chosen, 1, seed=1)[0]  # type: ignore[arg-type]
    perfect = {
        "shape": case.expected.shape,
        "colour": case.expected.colour,
        "pattern": case.expected.pattern,
        "style": case.expected.style,
        "background": case.expected.background,
    }
    assert combo_score(case, perfect)["joint"] == 1.0
    wrong_style = {
        **perfect,
        "style": next(s for s in ("flat", "outline", "sketchy") if s != perfect["style"]),
    }
    score = combo_score(case, wrong_style)
    assert score["joint"] == 0.0 and score["transfer_style"] == 0.0
    assert score["transfer_shape"] == 1.0 and score["fidelity"] == 1.0
    wrong_background = {**perfect, "background": "no such background"}
    assert combo_score(case, wrong_background)["fidelity"] == 0.0


def test_a_combinations_references_come_from_different_indices() -> None:
    plan = ComboPlan()
    for combo in range(plan.combinations):
        indices = plan.indices("all three", combo)
        assert len(set(indices.values())) == 3


def test_the_decomposition_report_pairs_each_kind_per_reference() -> None:
    from ostaf.world.decomposition_bench import HOW, UnitRecord, joint_caption, report

    scene = references(STYLE, 1)[0]
    assert joint_caption(scene).startswith("a {appearance} {shape}, {style} style, on a ")

    def rows(joint: float) -> list[dict[str, float]]:
        return [{"joint": joint}] * 4

    records = [
        UnitRecord(
            index,
            scores={
                "alone": {str(k): rows(0.5) for k in AttributeKind},
                "one pass": {str(k): rows(0.5 + 0.25 * index) for k in AttributeKind},
            },
            untuned={str(k): rows(0.0) for k in AttributeKind},
            seconds=dict.fromkeys(HOW, 10.0) | {"one pass": 6.0},
        )
        for index in range(2)
    ]
    lines = report(records, "test model", "unseen")
    shape = next(line for line in lines if line.startswith("| shape |"))
    assert "| 0 % | 50 % | 62 % | **+12**" in shape
    assert shape.endswith("| – | – |")  # no split pass in these records
    assert "- one pass 6.0 s: 0.60×." in lines


def test_own_word_singles_are_the_catalogues_variants_under_each_kinds_word() -> None:
    from ostaf.world.attribute_bench import CATALOGUE, DEFAULT

    rebased, own = ComboPlan(), ComboPlan(own_words=True)
    for kind in (APPEARANCE, SHAPE, STYLE):
        assert rebased.variant_for(kind) == DEFAULT
        variant = own.variant_for(kind)
        assert variant.placeholder() == WORDS[kind] != DEFAULT.placeholder()
        assert CATALOGUE[variant.key] == variant  # the attribute benchmark's own cache entry


def test_untuned_scores_are_taken_only_from_the_same_combination(tmp_path: Path) -> None:
    import json
    from dataclasses import asdict
    from types import SimpleNamespace

    from ostaf.world.combination_bench import ComboBench, ComboRecord

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    rows = [{"joint": 1.0}, {"joint": 0.0}]
    words = {"shape": "d", "style": "f"}
    old = ComboRecord("shape+style", 3, {"shape": 10, "style": 16}, words, {"0": rows})
    (earlier / "shape+style-3.json").write_text(json.dumps(asdict(old)))
    bench = ComboBench(tmp_path / "new", SimpleNamespace(model=None), untuned_from=earlier)  # type: ignore[arg-type]
    same = ComboRecord("shape+style", 3, {"shape": 10, "style": 16}, dict(words))
    assert bench._untuned("shape+style-3.json", same, 2) == rows
    assert bench._untuned("shape+style-3.json", same, 3) is None  # other prompt count
    other = ComboRecord("shape+style", 3, {"shape": 11, "style": 16}, dict(words))
    assert bench._untuned("shape+style-3.json", other, 2) is None  # other references
    assert bench._untuned("shape+style-4.json", same, 2) is None  # not there


def test_the_decomposition_runs_only_the_ways_asked_for(tmp_path: Path) -> None:
    import json
    from dataclasses import asdict

    from ostaf.world.decomposition_bench import DecompositionBench, UnitRecord

    rows = {str(k): [{"joint": 1.0}] for k in AttributeKind}
    cached = UnitRecord(0, scores={"alone": rows, "split pass": rows}, untuned=rows)
    (tmp_path / "unit-0.json").write_text(json.dumps(asdict(cached)))
    scenes = references(STYLE, 1)
    chosen = DecompositionBench(tmp_path, None, ways=("alone", "split pass"))
    assert chosen.unit(scenes, 0, 1) == cached  # nothing to run: no model needed
    every = DecompositionBench(tmp_path, None)  # one pass is missing: it would learn it
    with pytest.raises(AttributeError):  # ...on the model, which this test does not load
        every.unit(scenes, 0, 1)
