"""Tables and the picture grid of the attribute benchmark.

Per reference, every metric is the mean over its prompts and tuning seeds; a kind's figure is
the mean over references, and its 95 % interval a percentile bootstrap over references (the
unit that varies most). Lift is the tuned joint minus the same reference's untuned joint;
a paired difference between two variants is taken per reference before the bootstrap.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from statistics import mean

from PIL import Image, ImageDraw, ImageFont

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_bench import DEFAULT, LAMBDAS, NAMED, Plan, Record, Variant
from ostaf.world.attribute_cases import TRANSFERRED, references

METRICS = ("transfer", "fidelity", "joint", "leakage")
BOOTSTRAP = 2000
GRID_PROMPTS = 2
GRID_ZOOM = 2

PerReference = dict[int, float]


def per_reference(
    records: Sequence[Record], variant: str, kind: str, key: str, metric: str
) -> PerReference:
    """Each reference's mean of `metric` at λ `key` over its prompts and tuning seeds."""
    rows: dict[int, list[float]] = {}
    for record in records:
        if record.variant == variant and record.kind == kind and key in record.scores:
            rows.setdefault(record.reference, []).extend(r[metric] for r in record.scores[key])
    return {ref: mean(values) for ref, values in rows.items() if values}


def untuned_key(variant: Variant) -> str:
    return f"untuned-{variant.placeholder()}"


def lift(records: Sequence[Record], variant: Variant, kind: str, lam: str = "1") -> PerReference:
    """Per reference: tuned joint at λ minus the untuned joint (same prompts, same token)."""
    tuned = per_reference(records, variant.key, kind, lam, "joint")
    untuned = per_reference(records, untuned_key(variant), kind, "0", "joint")
    return {ref: tuned[ref] - untuned[ref] for ref in tuned if ref in untuned}


def difference(first: PerReference, second: PerReference) -> PerReference:
    """Per reference `first` − `second`, over the references both have."""
    return {ref: first[ref] - second[ref] for ref in first if ref in second}


def interval(values: PerReference, seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap 95 % interval over references."""
    data = list(values.values())
    if not data:
        return float("nan"), float("nan"), float("nan")
    rng = random.Random(seed)
    means = sorted(mean(rng.choices(data, k=len(data))) for _ in range(BOOTSTRAP))
    return mean(data), means[int(0.025 * BOOTSTRAP)], means[int(0.975 * BOOTSTRAP) - 1]


def _points(value: float) -> str:
    return f"{100 * value:+.0f}"


def _ci(values: PerReference) -> str:
    centre, low, high = interval(values)
    if centre != centre:  # nan: nothing measured
        return "–"
    return f"{_points(centre)} [{_points(low)}, {_points(high)}]"


def _pct(values: PerReference) -> str:
    return f"{100 * mean(values.values()):.0f} %" if values else "–"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def headline_table(records: Sequence[Record], plan: Plan) -> list[str]:
    """One row per kind: the default variant at λ = 1 against the untuned model, and what
    the untuned model reaches when the attribute is named in words ("named": the ceiling)."""
    rows = []
    variant = plan.variants[0]
    for kind in (str(k) for k in plan.kinds):
        metric = _metric_getter(records, variant.key, kind, "1")
        untuned = _on(per_reference(records, untuned_key(variant), kind, "0", "joint"), metric)
        named = _metric_getter(records, NAMED, kind, "0")
        rows.append(
            [
                kind,
                str(len(metric("joint"))),
                _pct(_on(named("fidelity"), metric)),
                _pct(_on(named("joint"), metric)),
                _pct(untuned),
                _pct(metric("transfer")),
                _pct(metric("fidelity")),
                _pct(metric("leakage")),
                _pct(metric("joint")),
                _ci(lift(records, variant, kind)),
            ]
        )
    return _table(
        (
            "kind",
            "refs",
            "named: fidelity",
            "named: joint",
            "untuned joint",
            "transfer",
            "fidelity",
            "leakage",
            "joint",
            "joint lift, points [95 % CI]",
        ),
        rows,
    )


def _on(values: PerReference, tuned: Callable[[str], PerReference]) -> PerReference:
    """`values` of the references that have tuned results."""
    have = tuned("joint")
    return {ref: value for ref, value in values.items() if ref in have}


def _metric_getter(
    records: Sequence[Record], variant: str, kind: str, key: str
) -> Callable[[str], PerReference]:
    return lambda metric: per_reference(records, variant, kind, key, metric)


def variant_table(records: Sequence[Record], plan: Plan) -> list[str]:
    """Every variant at λ = 1, with its lift and its paired joint difference to the default."""
    rows = []
    default = plan.variants[0]
    for kind in (str(k) for k in plan.kinds):
        base_joint = per_reference(records, default.key, kind, "1", "joint")
        for variant in plan.variants:
            if not variant.applies_to(AttributeKind(kind)):
                continue
            metric = _metric_getter(records, variant.key, kind, "1")
            joint = metric("joint")
            if not joint:
                continue
            seconds = [
                r.tuning_seconds
                for r in records
                if r.variant == variant.key and r.kind == kind and r.seed >= 0
            ]
            rows.append(
                [
                    kind,
                    describe(variant),
                    str(len(joint)),
                    f"{mean(seconds):.0f} s",
                    _pct(metric("transfer")),
                    _pct(metric("fidelity")),
                    _pct(metric("leakage")),
                    _pct(joint),
                    _ci(lift(records, variant, kind)),
                    "" if variant == default else _ci(difference(joint, base_joint)),
                ]
            )
    return _table(
        (
            "kind",
            "variant",
            "refs",
            "tuning",
            "transfer",
            "fidelity",
            "leakage",
            "joint",
            "joint lift [95 % CI]",
            "joint vs default [95 % CI]",
        ),
        rows,
    )


def lambda_table(records: Sequence[Record], plan: Plan) -> list[str]:
    """Transfer, fidelity, joint and leakage against λ for the default variant, every row on
    the same tunings: those the sweep rendered at every λ of `LAMBDAS` (and any finer λ
    rendered into all of them)."""
    rows = []
    variant = plan.variants[0]
    swept_keys = {f"{lam:g}" for lam in LAMBDAS if lam}
    for kind in (str(k) for k in plan.kinds):
        swept = [
            r
            for r in records
            if r.variant == variant.key and r.kind == kind and swept_keys <= set(r.scores)
        ]
        if not swept:
            continue
        refs = {r.reference for r in swept}
        untuned = [r for r in records if r.variant == untuned_key(variant) and r.kind == kind]
        shown = [r for r in untuned if r.reference in refs] + swept
        keys = set.intersection(*(set(r.scores) for r in swept))
        for lam in sorted({0.0, *(float(key) for key in keys)}):
            name, key = (untuned_key(variant), "0") if lam == 0 else (variant.key, f"{lam:g}")
            cells = [_pct(per_reference(shown, name, kind, key, m)) for m in METRICS]
            rows.append([kind, f"{lam:g}", f"{len(refs)} × {_seeds(swept)}", *cells])
    return _table(("kind", "λ", "refs × seeds", *METRICS), rows)


def _seeds(records: Sequence[Record]) -> str:
    """How many tuning seeds each reference has, e.g. '2' or '1–2'."""
    counts = Counter(record.reference for record in records).values()
    low, high = min(counts), max(counts)
    return f"{low}" if low == high else f"{low}–{high}"


def value_table(records: Sequence[Record], plan: Plan) -> list[str]:
    """Untuned and tuned joint per value of the kind's attribute (default variant)."""
    rows = []
    variant = plan.variants[0]
    for kind in plan.kinds:
        attribute = TRANSFERRED[kind][0]
        scenes = references(kind, plan.references, plan.reference_set)
        tuned = per_reference(records, variant.key, str(kind), "1", "joint")
        untuned = per_reference(records, untuned_key(variant), str(kind), "0", "joint")
        transfer = per_reference(records, variant.key, str(kind), "1", "transfer")
        untuned_transfer = per_reference(records, untuned_key(variant), str(kind), "0", "transfer")
        by_value: dict[str, list[int]] = {}
        for index in tuned:
            by_value.setdefault(getattr(scenes[index], attribute), []).append(index)
        for value in sorted(by_value):
            refs = by_value[value]
            rows.append(
                [
                    str(kind),
                    value,
                    str(len(refs)),
                    _pct({r: untuned_transfer[r] for r in refs if r in untuned_transfer}),
                    _pct({r: transfer[r] for r in refs}),
                    _pct({r: untuned[r] for r in refs if r in untuned}),
                    _pct({r: tuned[r] for r in refs}),
                ]
            )
    return _table(
        ("kind", "value", "refs", "untuned transfer", "transfer", "untuned joint", "joint"), rows
    )


METHOD_NAMES = {"lora": "plain LoRA", "gains": "hypernetwork with per-layer gains"}


PREPARED = {
    "cropped": "the reference cropped to its subject",
    "masked": "the subject's mask given",
    "cropped+masked": "the reference cropped to its subject, its mask given",
}


def describe(variant: Variant) -> str:
    """A short description of what the variant changes."""
    if variant == DEFAULT:
        return "default"
    if variant.before:
        return "before (template prompt, sks, encoder for shape, all t, lr 3e-4)"
    parts = [METHOD_NAMES.get(variant.method, variant.method)]
    if variant.caption:
        parts.append("template prompt")
    if variant.token:
        parts.append(f"token {variant.token}")
    if variant.region:
        parts.append(f"region {variant.region}")
    if variant.timesteps:
        parts.append("t in [500, 1000)" if variant.timesteps == "high" else "all t")
    for label, value in (
        ("steps", variant.steps),
        ("lr", variant.learning_rate),
        ("rank", variant.rank),
        ("prior", variant.prior),
        ("strength", variant.strength or None),
        ("timesteps per step", variant.timesteps_per_step),
    ):
        if value is not None:
            parts.append(f"{label} {value:g}")
    if variant.strength == 0:
        parts.append("the learned word alone (offsets dropped)")
    for label, scale in (("lr", variant.lr_scale), ("strength", variant.strength_scale)):
        if scale is not None:
            parts.append(f"the kind's own {label} × {scale:.3g}")
    if variant.prepare:
        parts.append(PREPARED[variant.prepare])
    if variant.rotate is not None:
        parts.append("quarter turns of the reference" if variant.rotate else "no quarter turns")
    if variant.embedding_rate == 0:
        parts.append("placeholder word not learned")
    elif variant.embedding_rate is not None:
        parts.append(f"word lr {variant.embedding_rate:g}")
    return ", ".join(parts)


def picture_grid(cache: Path, plan: Plan) -> Image.Image:
    """Per kind, the first reference, then its first prompts' outputs at every λ."""
    from ostaf.world.attribute_bench import case_seed
    from ostaf.world.attribute_cases import cases

    variant = plan.variants[0]
    tile = 64 * GRID_ZOOM
    label = 14
    rows = []
    for kind in plan.kinds:
        scene = references(kind, 1)[0]
        prompts = cases(scene, kind, GRID_PROMPTS, seed=case_seed(0))
        for number, case in enumerate(prompts[:GRID_PROMPTS]):
            row = [scene.render(64) if number == 0 else None]
            for lam in LAMBDAS:
                name = untuned_key(variant) if lam == 0 else variant.key
                path = cache / "images" / name / f"{kind}-0" / f"{lam:g}" / f"{number}.png"
                row.append(Image.open(path).convert("RGB") if path.is_file() else None)
            rows.append((f"{kind}: {case.prompt('token', variant.placeholder())}", row))
    width = tile * (1 + len(LAMBDAS))
    sheet = Image.new("RGB", (width, label + len(rows) * (tile + label)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(11)  # the bundled font has no Greek: "lambda", not "λ"
    draw.text((4, 1), "reference", fill="black", font=font)
    for column, lam in enumerate(LAMBDAS, start=1):
        draw.text((column * tile + 4, 1), f"lambda = {lam:g}", fill="black", font=font)
    for number, (text, row) in enumerate(rows):
        top = label + number * (tile + label)
        draw.text((4, top), text, fill="black", font=font)
        for column, image in enumerate(row):
            if image is not None:
                zoomed = image.resize((tile, tile), Image.Resampling.NEAREST)
                sheet.paste(zoomed, (column * tile, top + label))
    return sheet


def write_report(
    records: Sequence[Record],
    plan: Plan,
    cache: Path,
    out: Path,
    quick: bool = False,
    model_name: str = "",
) -> list[Path]:
    """Write the markdown tables, the raw records (JSON) and the picture grid to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "attribute_bench_quick" if quick else "attribute_bench"
    lines = [
        f"# Attribute benchmark{' (quick slice)' if quick else ''}",
        "",
        f"Model: {model_name or 'the demo model'}; references: the '{plan.reference_set}' set "
        "(ostaf/world/attribute_cases.py REFERENCE_SETS).",
        "",
        f"Up to {plan.references} held-out reference(s) per kind × {plan.prompts} prompts × "
        f"{plan.seeds} tuning seed(s); DDIM 25 steps, CFG 5. Transfer: the output shows the "
        "reference's attribute; fidelity: everything else the prompt asked; joint: both; "
        "leakage: the reference's other attributes showing up. Lift: tuned joint minus the "
        "same reference's untuned joint. Intervals: 95 % bootstrap over references.",
        "",
        "## Headline (default settings, λ = 1)",
        "",
        *headline_table(records, plan),
        "",
        "## Variants at λ = 1",
        "",
        *variant_table(records, plan),
        "",
        "## λ sweep (default settings)",
        "",
        *lambda_table(records, plan),
        "",
        "## By value of the attribute (default settings, λ = 1)",
        "",
        *value_table(records, plan),
        "",
    ]
    table = out / f"{stem}.md"
    table.write_text("\n".join(lines))
    raw = out / f"{stem}.json"
    # One record per line: readable, diffable, and two thirds of the indented size.
    compact = (json.dumps(asdict(r), separators=(",", ":")) for r in records)
    raw.write_text("[\n" + ",\n".join(compact) + "\n]\n")
    grid = out / f"{stem}.png"
    picture_grid(cache, plan).save(grid, optimize=True)
    return [table, raw, grid]
