"""The attribute benchmark's plan and report, on made-up records (nothing is tuned here):
pairing, the variants' settings, lift over untuned and the bootstrap intervals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ostaf.method.regions import DEFAULT_TOKEN, REGION_BY_KIND, AttributeKind
from ostaf.requests import KIND_TUNING
from ostaf.world import attribute_bench
from ostaf.world.attribute_bench import (
    CATALOGUE,
    DEFAULT,
    NAMED,
    REGIONS,
    ROBUSTNESS_SCALES,
    Bench,
    Record,
    Variant,
    full_plan,
    tuning_settings,
)
from ostaf.world.attribute_cases import references
from ostaf.world.attribute_report import (
    describe,
    difference,
    interval,
    lambda_table,
    lift,
    variant_table,
    write_report,
)


def test_every_variant_of_the_catalogue_has_its_own_key() -> None:
    assert len({v.key for v in CATALOGUE.values()}) == len(CATALOGUE)
    assert DEFAULT.key == "hypernetwork" and CATALOGUE["lora-lr0.003"].method == "lora"
    # Listed for appearance, style and shape apart: one variant that runs on all three.
    assert sorted(CATALOGUE["lora-lr0.0003-strength1"].kinds) == ["appearance", "shape", "style"]
    # Keys print rates to 6 digits: two rates that print alike must not be merged.
    alike = [Variant(learning_rate=3e-4, kinds=("shape",)), Variant(learning_rate=3.0000001e-4)]
    with pytest.raises(ValueError, match="two different variants have the key hypernetwork-lr"):
        attribute_bench._by_key([alike[0], replace(alike[1], kinds=("style",))])


def test_every_variant_of_the_catalogue_is_described_apart_in_the_report() -> None:
    for kind in AttributeKind:
        described = [describe(v) for v in CATALOGUE.values() if v.applies_to(kind)]
        assert len(set(described)) == len(described), described
    # Measured before appearance learned its word.
    eight = CATALOGUE["hypernetwork-lr0.0003-strength1-emb0-tps8"]
    assert describe(eight) == (
        "hypernetwork, lr 0.0003, strength 1, timesteps per step 8, placeholder word not learned"
    )
    eight_settings = tuning_settings(eight, AttributeKind.APPEARANCE)
    assert (eight_settings.timesteps_per_step, eight_settings.embedding_rate) == (8, 0.0)
    assert eight_settings.learning_rate == 3e-4  # that time's rate, whatever the default now
    turned = CATALOGUE["hypernetwork-lr0.0003-strength1-emb0-rotate1"]
    assert describe(turned) == (
        "hypernetwork, lr 0.0003, strength 1, quarter turns of the reference, "
        "placeholder word not learned"
    )
    assert tuning_settings(turned, AttributeKind.APPEARANCE).rotate is True
    # Appearance learns its word by default, with its offsets at 1e-5; the old defaults are
    # variants of their own.
    appearance = tuning_settings(DEFAULT, AttributeKind.APPEARANCE)
    assert (appearance.embedding_rate, appearance.strength) == (1e-3, 1.0)
    assert appearance.learning_rate == 1e-5
    seventh = tuning_settings(
        CATALOGUE["hypernetwork-lr0.0003-strength0.5"], AttributeKind.APPEARANCE
    )
    assert (seventh.learning_rate, seventh.strength, seventh.embedding_rate) == (3e-4, 0.5, 1e-3)
    word_alone = CATALOGUE["lora-lr0.0003-strength0"]
    assert describe(word_alone) == "plain LoRA, lr 0.0003, the learned word alone (offsets dropped)"
    old_default = CATALOGUE["hypernetwork-lr0.0003-strength1-emb0"]
    assert tuning_settings(old_default, AttributeKind.APPEARANCE).embedding_rate == 0
    assert tuning_settings(DEFAULT, AttributeKind.APPEARANCE).rotate is False


def test_each_kind_is_also_measured_under_the_word_combinations_give_it() -> None:
    from ostaf.world.combination_bench import WORDS

    for kind, word in WORDS.items():
        variant = CATALOGUE[f"hypernetwork-{word}"]
        assert variant.applies_to(kind)
        assert not any(variant.applies_to(other) for other in WORDS if other != kind)
        settings = tuning_settings(variant, kind)
        assert settings.token == word
        default = tuning_settings(DEFAULT, kind)
        assert (settings.learning_rate, settings.strength, settings.embedding_rate) == (
            default.learning_rate,
            default.strength,
            default.embedding_rate,
        )


def test_the_cross_attention_regions_tune_only_the_decoders_text_attention() -> None:
    block = "up_blocks.1.attentions.0.transformer_blocks.0"
    paths = [
        f"{where}.{attention}.{projection}"
        for where in (block, block.replace("up_blocks.1", "down_blocks.0"))
        for attention in ("attn1", "attn2")
        for projection in ("to_q", "to_k", "to_v", "to_out.0")
    ]
    cross = tuning_settings(
        CATALOGUE["hypernetwork-decoder-cross-lr0.0003-strength1-emb0"], AttributeKind.APPEARANCE
    )
    assert cross.region is not None
    assert cross.region.select(paths) == sorted(
        f"{block}.attn2.{p}" for p in ("to_q", "to_k", "to_v", "to_out.0")
    )
    keys_values = tuning_settings(
        CATALOGUE["hypernetwork-decoder-kv-lr0.0003-strength1-emb0"], AttributeKind.APPEARANCE
    )
    assert keys_values.region is not None
    assert keys_values.region.select(paths) == [f"{block}.attn2.to_k", f"{block}.attn2.to_v"]


def test_jobs_pair_every_variant_on_the_same_references_and_seeds(tmp_path: Path) -> None:
    plan = full_plan(references=3, prompts=2, seeds=2, variants=["hypernetwork-zqx"])
    assert plan.variants[0] == DEFAULT  # the default always runs, first (it is swept)
    jobs = Bench(tmp_path, model=None).jobs(plan)
    untuned = [job for job in jobs if isinstance(job[0], str)]
    assert {job[0] for job in untuned} == {DEFAULT_TOKEN, "zqx", NAMED}
    assert jobs[: len(untuned)] == untuned  # untuned renders first, shared by the variants
    tuned = [job for job in jobs if not isinstance(job[0], str)]
    for variant in plan.variants:
        assert sorted(j[1:] for j in tuned if j[0] == variant) == sorted(
            (kind, i, s) for kind in plan.kinds for i in range(3) for s in range(2)
        )
    # References outermost: a run cut short has every variant on the same first references.
    order = [(j[3], j[2]) for j in tuned]
    assert order == sorted(order)


def test_the_lambda_sweep_covers_the_first_references_of_seed_zero() -> None:
    plan = full_plan(references=24, seeds=2, sweep_references=8)
    assert [plan.sweeps(i, 0) for i in (0, 7, 8, 23)] == [True, True, False, False]
    assert not plan.sweeps(0, 1)
    everywhere = full_plan(references=24, seeds=2)
    assert all(everywhere.sweeps(i, s) for i in range(24) for s in (0, 1))
    assert everywhere.lambdas == (0.5, 1.0, 1.5)
    assert full_plan(lambdas=[1.2, 0.8, 1.0]).lambdas == (0.5, 0.8, 1.0, 1.2, 1.5)


@pytest.mark.parametrize("given", ["0.8,x", "0,1", "5"])
def test_impossible_extra_lambdas_are_refused_before_anything_loads(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        attribute_bench.main(["--lambdas", given])
    assert stopped.value.code == 2
    assert f"--lambdas {given}" in capsys.readouterr().err


def test_default_settings_tune_on_the_reference_description() -> None:
    scene = references(AttributeKind.SHAPE, 1)[0]
    settings = tuning_settings(DEFAULT, AttributeKind.SHAPE, scene)
    assert "{token}" in settings.caption and scene.shape not in settings.caption
    assert scene.colour in settings.caption
    assert settings.region == REGION_BY_KIND[AttributeKind.SHAPE] == REGIONS["encoder+mid"]
    assert settings.token == DEFAULT_TOKEN
    before = tuning_settings(Variant(before=True), AttributeKind.SHAPE, scene)
    assert (before.caption, before.token, before.region) == ("", "sks", REGIONS["encoder"])
    assert before.timesteps == (0.0, 1.0) and before.learning_rate == 3e-4
    template = tuning_settings(Variant(caption="template"), AttributeKind.STYLE, scene)
    assert template.caption == ""
    # The kind's prior and strength are the default's; a variant may set its own.
    for kind in AttributeKind:
        default = tuning_settings(DEFAULT, kind, references(kind, 1)[0])
        assert (default.prior, default.strength) == (
            KIND_TUNING[kind].prior,
            KIND_TUNING[kind].strength,
        )
    lora = tuning_settings(CATALOGUE["lora-lr0.003-strength1"], AttributeKind.SHAPE, scene)
    assert (lora.strength, lora.learning_rate) == (1.0, 3e-3)
    assert not CATALOGUE["lora-lr0.003-strength1"].applies_to(AttributeKind.STYLE)
    assert (before.prior, before.strength) == (0.0, 1.0)  # "before" is the old defaults


def _record(variant: str, kind: str, reference: int, key: str, joints: list[float]) -> Record:
    rows = [
        {"transfer": j, "fidelity": 1.0, "joint": j, "leakage": 0.0, "shape_iou": 0.5}
        for j in joints
    ]
    return Record(variant, kind, reference, -1 if key == "0" else 0, 1.0, 0.1, {key: rows})


def test_lift_is_per_reference_against_the_untuned_renders_of_the_same_token() -> None:
    untuned = f"untuned-{DEFAULT_TOKEN}"
    records = [
        _record(untuned, "shape", 0, "0", [0, 0, 0, 0]),
        _record(untuned, "shape", 1, "0", [1, 1, 0, 0]),
        _record("hypernetwork", "shape", 0, "1", [1, 1, 1, 0]),
        _record("hypernetwork", "shape", 1, "1", [1, 1, 0, 0]),
    ]
    assert lift(records, DEFAULT, "shape") == {0: 0.75, 1: 0.0}
    assert difference({0: 0.5, 1: 0.2}, {1: 0.1, 2: 0.3}) == pytest.approx({1: 0.1})


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_agreement() -> None:
    centre, low, high = interval({i: float(i % 2) for i in range(20)})
    assert centre == 0.5 and low < 0.5 < high and high - low < 0.6
    same = interval({i: 0.3 for i in range(20)})
    assert same == pytest.approx((0.3, 0.3, 0.3))


def test_report_lists_every_variant_with_its_paired_difference(tmp_path: Path) -> None:
    plan = full_plan(references=2, prompts=4, seeds=1, variants=["lora-lr0.001"])
    records = []
    for ref in range(2):
        records.append(_record(f"untuned-{DEFAULT_TOKEN}", "style", ref, "0", [0, 0, 0, 0]))
        records.append(_record("hypernetwork", "style", ref, "1", [1, 1, 0, 0]))
        records.append(_record("lora-lr0.001", "style", ref, "1", [1, 1, 1, 1]))
    table = "\n".join(variant_table(records, plan))
    assert "| style | default | 2 |" in table
    assert "plain LoRA, lr 0.001" in table and "+50 [+50, +50]" in table
    paths = write_report(records, plan, tmp_path / "cache", tmp_path / "out")
    assert [p.suffix for p in paths] == [".md", ".json", ".png"]
    assert "Headline" in paths[0].read_text()


def test_a_report_is_written_from_the_cache_alone_with_what_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    records = [
        _record(f"untuned-{DEFAULT_TOKEN}", "style", 0, "0", [0, 0, 0, 0]),
        _record(f"untuned-{DEFAULT_TOKEN}", "style", 1, "0", [0, 0, 0, 0]),
        _record("hypernetwork", "style", 0, "1", [1, 1, 1, 0]),  # reference 1: never ran
    ]
    for record in records:
        name = f"style-{record.reference}" + ("" if record.seed < 0 else f"-s{record.seed}")
        attribute_bench._save_record(cache / record.variant / f"{name}.json", record)
    argv = ["--cache", str(cache), "--out", str(out), "--kinds", "style", "--references", "2"]
    assert attribute_bench.main(["--report-only", "--seeds", "1", *argv]) == 0
    headline = (out / "attribute_bench.md").read_text().split("## Variants")[0]
    # One reference ran: 75 % joint against 0 % untuned on it.
    assert "| style | 1 |" in headline and "| 75 % |" in headline and "+75 [+75, +75]" in headline
    assert "Model: OSTAF demo world (64 px);" in headline
    # The model the records came from is named without loading it.
    assert attribute_bench.main(["--report-only", "--seeds", "1", "--model", "demo-xl", *argv]) == 0
    assert "Model: OSTAF demo world XL (64 px);" in (out / "attribute_bench.md").read_text()
    with pytest.raises(SystemExit):
        attribute_bench.main(["--report-only", "--out", str(out)])
    assert "--report-only reads a --cache" in capsys.readouterr().err


def test_lambda_rows_are_all_on_the_tunings_the_sweep_rendered() -> None:
    """λ = 1 was rendered for every reference, 0.5 and 1.5 for the first only: every row of
    the sweep table is on that first reference, so the rows compare the same pictures."""
    plan = full_plan(references=2, prompts=4, seeds=1)
    untuned = f"untuned-{DEFAULT_TOKEN}"
    swept = _record("hypernetwork", "shape", 0, "1", [1, 1, 0, 0])
    swept.scores["0.5"] = list(swept.scores["1"])  # joint 50 %
    swept.scores["1.5"] = [dict(row, joint=1.0) for row in swept.scores["1"]]
    records = [
        _record(untuned, "shape", 0, "0", [0, 0, 0, 0]),
        _record(untuned, "shape", 1, "0", [1, 1, 1, 1]),
        swept,
        _record("hypernetwork", "shape", 1, "1", [1, 1, 1, 1]),  # not swept: left out
    ]
    rows = [line.split(" | ") for line in lambda_table(records, plan)[2:]]
    assert [(row[1], row[2], row[5]) for row in rows] == [
        ("0", "1 × 1", "0 %"),
        ("0.5", "1 × 1", "50 %"),
        ("1", "1 × 1", "50 %"),
        ("1.5", "1 × 1", "100 %"),
    ]


def test_robustness_variants_scale_each_kinds_own_rate_and_strength() -> None:
    for kind in AttributeKind:
        default = tuning_settings(DEFAULT, kind)
        for scale in ROBUSTNESS_SCALES:
            rate = tuning_settings(CATALOGUE[Variant(lr_scale=scale).key], kind)
            assert rate.learning_rate == pytest.approx(default.learning_rate * scale)
            assert rate.strength == default.strength
            strength = tuning_settings(CATALOGUE[Variant(strength_scale=scale).key], kind)
            assert strength.strength == pytest.approx(default.strength * scale)
            assert strength.learning_rate == default.learning_rate


def test_a_users_picture_is_cropped_to_its_subject_or_masked_by_the_variant() -> None:
    from ostaf.images import subject_crop
    from ostaf.world.attribute_bench import PREPARED_PIXELS

    for scene in references(AttributeKind.SHAPE, 4, "users"):
        cropped = tuning_settings(CATALOGUE["hypernetwork-cropped"], AttributeKind.SHAPE, scene)
        assert cropped.crop == subject_crop(scene.mask(PREPARED_PIXELS))
        both = tuning_settings(CATALOGUE["hypernetwork-cropped-masked"], AttributeKind.SHAPE, scene)
        assert both.crop == cropped.crop
        masked = tuning_settings(CATALOGUE["hypernetwork-masked"], AttributeKind.SHAPE, scene)
        assert masked.crop is None
    assert describe(CATALOGUE["hypernetwork-masked"]) == "hypernetwork, the subject's mask given"
