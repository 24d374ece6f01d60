"""Tables and the picture grid of the attribute benchmark."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_bench import LAMBDAS, Plan, Record, Variant
from ostaf.world.attribute_cases import references

METRICS = ("transfer", "shape_iou", "fidelity", "leakage")
GRID_PROMPTS = 2
GRID_ZOOM = 2


def aggregate(
    records: Iterable[Record], variant: str, kind: str, key: str
) -> dict[str, float] | None:
    """Mean of each metric over every reference and prompt of (variant, kind) at `key`
    ("λ/form"), plus the count of images; None when nothing was measured."""
    rows = [
        row
        for record in records
        if record.variant == variant and record.kind == kind
        for row in record.scores.get(key, [])
    ]
    if not rows:
        return None
    summary = {name: mean(row[name] for row in rows) for name in METRICS}
    summary["images"] = float(len(rows))
    return summary


def _cells(summary: dict[str, float] | None, kind: str) -> list[str]:
    if summary is None:
        return ["–"] * 4
    return [
        f"{summary['transfer']:.0%}",
        f"{summary['shape_iou']:.2f}" if kind == "shape" else "",
        f"{summary['fidelity']:.0%}",
        f"{summary['leakage']:.0%}",
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


METRIC_HEADER = ("transfer", "IoU", "fidelity", "leakage")


def lambda_table(records: Sequence[Record], variant: Variant, form: str) -> list[str]:
    """Transfer, fidelity and leakage against λ, per kind."""
    rows = []
    for kind in AttributeKind:
        for lam in LAMBDAS:
            summary = aggregate(records, variant.key, str(kind), f"{lam:g}/{form}")
            if summary is not None:
                rows.append([str(kind), f"{lam:g}", *_cells(summary, str(kind))])
    return _table(("kind", "λ", *METRIC_HEADER), rows)


def form_table(records: Sequence[Record], variant: Variant) -> list[str]:
    """The two prompt forms at λ = 1."""
    rows = []
    for kind in AttributeKind:
        for form in ("token", "omitted"):
            summary = aggregate(records, variant.key, str(kind), f"1/{form}")
            if summary is not None:
                rows.append([str(kind), form, *_cells(summary, str(kind))])
    return _table(("kind", "prompt form", *METRIC_HEADER), rows)


def variant_table(records: Sequence[Record], plan: Plan) -> list[str]:
    """Every variant at λ = 1 (token form) next to the untuned model and the defaults."""
    rows = []
    variants = [*plan.sweep_variants, *plan.variants]
    for kind in AttributeKind:
        base = aggregate(records, plan.sweep_variants[0].key, str(kind), "0/token")
        if base is not None:
            rows.append([str(kind), "untuned (λ = 0)", "", "", *_cells(base, str(kind))])
        seen = set()
        for variant in (v.for_kind(kind) for v in variants):
            summary = aggregate(records, variant.key, str(kind), "1/token")
            if summary is None or variant in seen:
                continue
            seen.add(variant)
            seconds = mean(
                r.tuning_seconds for r in records if r.variant == variant.key and r.kind == kind
            )
            rows.append(
                [
                    str(kind),
                    _describe(variant, kind),
                    variant.region_name(kind),
                    f"{seconds:.0f} s",
                    *_cells(summary, str(kind)),
                ]
            )
    return _table(("kind", "variant", "region", "tuning", *METRIC_HEADER), rows)


def _describe(variant: Variant, kind: AttributeKind) -> str:
    from ostaf.world.attribute_bench import tuning_settings

    settings = tuning_settings(variant, kind)
    name = "plain LoRA" if variant.method == "lora" else "hypernetwork"
    return (
        f"{name}, {settings.steps} steps, lr {settings.learning_rate:g}, rank {settings.rank}"
        + ("" if variant != Variant() else " (default)")
    )


def picture_grid(cache: Path, plan: Plan) -> Image.Image:
    """Per kind, the first reference, then its first prompts' outputs at every λ."""
    from ostaf.world.attribute_bench import case_seed
    from ostaf.world.attribute_cases import cases

    swept = plan.sweep_variants[0].key
    tile = 64 * GRID_ZOOM
    label = 14
    rows = []
    for kind in plan.kinds:
        scene = references(kind, 1)[0]
        prompts = cases(scene, kind, GRID_PROMPTS, seed=case_seed(0))
        for number, case in enumerate(prompts[:GRID_PROMPTS]):
            row = [scene.render(64) if number == 0 else None]
            for lam in LAMBDAS:
                path = cache / "images" / swept / f"{kind}-0" / f"{lam:g}-token" / f"{number}.png"
                row.append(Image.open(path).convert("RGB") if path.is_file() else None)
            rows.append((f"{kind}: {case.prompt('token')}", row))
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
    records: Sequence[Record], plan: Plan, cache: Path, out: Path, quick: bool = False
) -> list[Path]:
    """Write the markdown tables, the raw records (JSON) and the picture grid to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    stem = "attribute_bench_quick" if quick else "attribute_bench"
    default = plan.sweep_variants[0]
    lines = [
        f"# Attribute benchmark{' (quick slice)' if quick else ''}",
        "",
        f"{plan.references} held-out reference(s) per kind × {plan.prompts} prompts; "
        "DDIM 25 steps, CFG 5. Transfer: the output shows the reference's attribute; IoU: "
        "silhouette IoU with the reference (shape); fidelity: everything else the prompt asked; "
        "leakage: the reference's other attributes showing up.",
        "",
        "## λ sweep (token prompts, default settings)",
        "",
        *lambda_table(records, default, "token"),
        "",
        "## Prompt forms at λ = 1",
        "",
        *form_table(records, default),
        "",
        "## Variants at λ = 1 (token prompts)",
        "",
        *variant_table(records, plan),
        "",
    ]
    table = out / f"{stem}.md"
    table.write_text("\n".join(lines))
    raw = out / f"{stem}.json"
    raw.write_text(json.dumps([_as_dict(r) for r in records], indent=1) + "\n")
    grid = out / f"{stem}.png"
    picture_grid(cache, plan).save(grid, optimize=True)
    return [table, raw, grid]


def _as_dict(record: Record) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)
