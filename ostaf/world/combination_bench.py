"""Attributes combined, on the demo world: `python -m ostaf.world.combination_bench`.

Each pair of kinds (appearance + shape, appearance + style, shape + style) and the triple is
rendered with every attribute from a different held-out reference, each at λ = 1 under a word
of its own, on prompts that name a new subject and use every attribute's word: "a cat d, f
style, on a white background" asks for the appearance learned as "cat" on the shape learned
as "d", drawn in the style learned as "f". Joint = every transferred attribute shows AND the
rest of the prompt does. Beside it: the same prompts untuned (the lift's baseline), and the
product of the single attributes' joints (what independent attributes would give).

The single attributes are the attribute benchmark's own (its default variant, tuning seed 0,
tuned with `sks`; `--single-cache` shares its cache): each is given its word by re-basing
(ostaf/method/word_rebase.py), which at λ = 1 conditions the model exactly as `sks` did.
With `--own-words` each single is instead the one tuned under its combination word from the
start (the variants `hypernetwork-cat`, `-d`, `-f`), as an attribute tuned in the app is;
`--untuned-from` takes the untuned renders' scores from another run's cache (the same
prompts and seeds: they do not depend on the singles).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Any

from ostaf.method.regions import AttributeKind
from ostaf.method.words import DEMO_CANDIDATES
from ostaf.world.attribute_bench import (
    DEFAULT,
    RENDER_GUIDANCE,
    RENDER_STEPS,
    Bench,
    Variant,
    case_seed,
)
from ostaf.world.attribute_cases import (
    REFERENCE_SETS,
    SUBJECT_ATTRIBUTES,
    TRANSFERRED,
    references,
    values_of,
)
from ostaf.world.scenes import Scene, allowed_backgrounds

APPEARANCE, SHAPE, STYLE = AttributeKind.APPEARANCE, AttributeKind.SHAPE, AttributeKind.STYLE
GROUPS: dict[str, tuple[AttributeKind, ...]] = {
    "appearance+shape": (APPEARANCE, SHAPE),
    "appearance+style": (APPEARANCE, STYLE),
    "shape+style": (SHAPE, STYLE),
    "all three": (APPEARANCE, SHAPE, STYLE),
}
# Each kind's word in a combination: the demo candidates with the least untuned pull.
WORDS: dict[AttributeKind, str] = {
    APPEARANCE: DEMO_CANDIDATES[0],
    SHAPE: DEMO_CANDIDATES[1],
    STYLE: DEMO_CANDIDATES[2],
}
# Which reference of each kind meets which: combination c takes reference (c + offset) mod n
# of each kind, so that no kind's references pair with the same index of another's.
OFFSETS = {APPEARANCE: 0, SHAPE: 7, STYLE: 13}


@dataclass(frozen=True)
class ComboCase:
    """One prompt for one combination: what it asks and what a perfect result shows."""

    references: tuple[tuple[AttributeKind, Scene], ...]
    expected: Scene  # each kind's transferred attributes from its reference, the rest new
    seed: int

    @property
    def kinds(self) -> tuple[AttributeKind, ...]:
        return tuple(kind for kind, _ in self.references)

    def prompt(self, words: Mapping[AttributeKind, str]) -> str:
        """The world's caption of `expected` with each kind's attributes replaced by its word."""
        scene = self.expected
        look = [words[APPEARANCE]] if APPEARANCE in self.kinds else [scene.colour, scene.pattern]
        subject = words[SHAPE] if SHAPE in self.kinds else scene.shape
        style = words[STYLE] if STYLE in self.kinds else scene.style
        article = "an" if look[0][0] in "aeiou" else "a"
        words_ = " ".join([*look, subject])
        return f"{article} {words_}, {style} style, on a {scene.background} background"


def combo_cases(chosen: Mapping[AttributeKind, Scene], count: int, seed: int) -> list[ComboCase]:
    """`count` prompts for one combination of references: every attribute no kind carries
    differs from every reference's, and so does the background where the world allows."""
    rng = random.Random(seed)
    found = []
    for index in range(count):
        values: dict[str, str] = {}
        for name in SUBJECT_ATTRIBUTES:
            carrier = next((k for k in chosen if name in TRANSFERRED[k]), None)
            if carrier is not None:
                values[name] = getattr(chosen[carrier], name)
            else:
                own = {getattr(scene, name) for scene in chosen.values()}
                values[name] = rng.choice(
                    [v for v in values_of(name) if v not in own] or list(values_of(name))
                )
        backgrounds = allowed_backgrounds(values["colour"], values["pattern"], values["style"])
        seen = {scene.background for scene in chosen.values()}
        others = [b for b in backgrounds if b not in seen] or list(backgrounds)
        first = next(iter(chosen.values()))
        expected = replace(
            first,
            shape=values["shape"],
            colour=values["colour"],
            pattern=values["pattern"],
            style=values["style"],
            background=rng.choice(others),
        )
        found.append(ComboCase(tuple(chosen.items()), expected, seed * 100 + index))
    return found


def combo_score(case: ComboCase, seen: Mapping[str, str | None]) -> dict[str, float]:
    """Transfer per kind and of all, fidelity to the rest of the prompt, joint: 1 or 0."""
    carried = {name for kind in case.kinds for name in TRANSFERRED[kind]}
    scores = {
        f"transfer_{kind}": float(
            all(seen[name] == getattr(reference, name) for name in TRANSFERRED[kind])
        )
        for kind, reference in case.references
    }
    transfer = all(scores[f"transfer_{kind}"] for kind in case.kinds)
    rest = [n for n in SUBJECT_ATTRIBUTES if n not in carried]
    fidelity = all(seen[name] == getattr(case.expected, name) for name in (*rest, "background"))
    return {
        **scores,
        "transfer": float(transfer),
        "fidelity": float(fidelity),
        "joint": float(transfer and fidelity),
    }


@dataclass(frozen=True)
class ComboPlan:
    """What a combination run covers."""

    combinations: int = 24
    prompts: int = 16
    groups: tuple[str, ...] = tuple(GROUPS)
    reference_set: str = "bench"
    variant: Variant = DEFAULT  # how the single attributes were tuned
    own_words: bool = False  # each single tuned under its combination word (not re-based)

    def variant_for(self, kind: AttributeKind) -> Variant:
        """How `kind`'s single attribute was tuned."""
        if not self.own_words:
            return self.variant
        return replace(self.variant, token=WORDS[kind], kinds=(str(kind),))

    def indices(self, group: str, combo: int) -> dict[AttributeKind, int]:
        """The reference of each kind in combination `combo` of `group`."""
        return {k: (combo + OFFSETS[k]) % self.combinations for k in GROUPS[group]}


@dataclass
class ComboRecord:
    """Scores of one combination: per prompt, untuned ("0") and with the attributes ("1"),
    and the singles' own joint at λ = 1 (their own prompts) per kind."""

    group: str
    combo: int
    references: dict[str, int]
    words: dict[str, str]
    scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    single_joint: dict[str, float] = field(default_factory=dict)
    single_transfer: dict[str, float] = field(default_factory=dict)


class ComboBench:
    """Runs and caches combinations on one loaded model; the singles come from (and go
    into) an attribute benchmark cache."""

    def __init__(
        self, cache: Path, singles: Bench, log: Any = print, untuned_from: Path | None = None
    ) -> None:
        self.cache = cache
        self.untuned_from = untuned_from
        self.singles = singles
        self.model = singles.model
        self.log = log
        cache.mkdir(parents=True, exist_ok=True)

    def run(self, plan: ComboPlan, part: int = 0, parts: int = 1) -> list[ComboRecord]:
        scenes = {
            kind: references(kind, plan.combinations, plan.reference_set)
            for kind in (APPEARANCE, SHAPE, STYLE)
        }
        records = []
        jobs = [(g, c) for g in plan.groups for c in range(plan.combinations)]
        for number, (group, combo) in enumerate(jobs):
            if number % parts == part:
                records.append(self.record(plan, group, combo, scenes))
        return records

    def record(
        self, plan: ComboPlan, group: str, combo: int, scenes: Mapping[AttributeKind, list[Scene]]
    ) -> ComboRecord:
        """Tune (or load) the singles, then score the combination's prompts untuned and
        with every attribute applied; cached per combination."""
        path = self.cache / f"{group.replace(' ', '-')}-{combo}.json"
        if path.is_file():
            return ComboRecord(**json.loads(path.read_text()))
        indices = plan.indices(group, combo)
        chosen = {kind: scenes[kind][index] for kind, index in indices.items()}
        attributes, joint, transfer = [], {}, {}
        for kind, index in indices.items():
            variant = plan.variant_for(kind)
            single = self.singles.record(
                variant, kind, index, chosen[kind], plan.prompts, (1.0,), seed=0
            )
            joint[str(kind)] = mean(row["joint"] for row in single.scores["1"])
            transfer[str(kind)] = mean(row["transfer"] for row in single.scores["1"])
            attributes.append(
                self._with_word(self.singles.attribute(variant, kind, index, 0), kind)
            )
        cases = combo_cases(chosen, plan.prompts, seed=case_seed(combo) + 31 * len(indices))
        prompts = [case.prompt(WORDS) for case in cases]
        self.log(f"combination {group} #{combo}: {prompts[0]}")
        record = ComboRecord(
            group,
            combo,
            {str(k): i for k, i in indices.items()},
            {str(k): WORDS[k] for k in indices},
            single_joint=joint,
            single_transfer=transfer,
        )
        earlier = self._untuned(path.name, record, len(prompts))
        if earlier is not None:
            record.scores["0"] = earlier
        for key, applied in (("0", []), ("1", attributes)):
            if key in record.scores:
                continue
            images = self._render(prompts, cases, applied)
            record.scores[key] = [
                combo_score(case, seen_attributes(image))
                for case, image in zip(cases, images, strict=True)
            ]
        path.write_text(json.dumps(asdict(record), indent=1))
        return record

    def _untuned(self, name: str, record: ComboRecord, count: int) -> list | None:
        """The untuned scores of the same combination in `untuned_from`, if it has them."""
        if self.untuned_from is None or not (self.untuned_from / name).is_file():
            return None
        earlier = ComboRecord(**json.loads((self.untuned_from / name).read_text()))
        same = (earlier.references, earlier.words) == (record.references, record.words)
        rows = earlier.scores.get("0", [])
        return rows if same and len(rows) == count else None

    def _with_word(self, attribute: Any, kind: AttributeKind) -> Any:
        from ostaf.method.word_rebase import rebase_word
        from ostaf.method.words import attribute_word

        if attribute_word(attribute.meta) == WORDS[kind]:
            return attribute
        return rebase_word(attribute, self.model, WORDS[kind])

    def _render(self, prompts: list[str], cases: Sequence[ComboCase], applied: list) -> list:
        from ostaf.render.rendering import apply_attributes, pipeline_for
        from ostaf.world.prompt_following import render_prompts

        apply_attributes(self.model, [(attribute, 1.0) for attribute in applied])
        try:
            pipe = pipeline_for(self.model, "ddim")
            seeds = [case.seed for case in cases]
            return render_prompts(pipe, prompts, seeds, RENDER_STEPS, RENDER_GUIDANCE)
        finally:
            self.model.merger.restore()


def seen_attributes(image: Any) -> dict[str, str | None]:
    """What the oracle reads in a picture, attribute by attribute."""
    from ostaf.world.oracle import analyse

    return analyse(image).attributes()


# ----------------------------------------------------------------------------- the report


def group_figures(records: Sequence[ComboRecord], group: str) -> dict[str, Any]:
    """Per combination means, then the group's means with bootstrap intervals."""
    from ostaf.world.attribute_report import interval

    rows = [r for r in records if r.group == group and "1" in r.scores and "0" in r.scores]
    if not rows:
        return {}

    def per(metric: str, key: str) -> dict[int, float]:
        return {r.combo: mean(s[metric] for s in r.scores[key]) for r in rows}

    tuned, untuned = per("joint", "1"), per("joint", "0")
    product = {r.combo: _product(r.single_joint.values()) for r in rows}
    transfer_product = {r.combo: _product(r.single_transfer.values()) for r in rows}
    lift = {c: tuned[c] - untuned[c] for c in tuned}
    kinds = GROUPS[group]
    return {
        "combinations": len(rows),
        "untuned_joint": mean(untuned.values()),
        "joint": mean(tuned.values()),
        "lift": interval(lift),
        "transfer": mean(per("transfer", "1").values()),
        "fidelity": mean(per("fidelity", "1").values()),
        "transfer_by_kind": {str(k): mean(per(f"transfer_{k}", "1").values()) for k in kinds},
        "single_transfer_by_kind": {
            str(k): mean(r.single_transfer[str(k)] for r in rows) for k in kinds
        },
        "singles_joint_product": mean(product.values()),
        "singles_transfer_product": mean(transfer_product.values()),
        "joint_over_product": mean(tuned.values()) / max(mean(product.values()), 1e-9),
    }


def _product(values: Any) -> float:
    result = 1.0
    for value in values:
        result *= value
    return result


def report(records: Sequence[ComboRecord], plan: ComboPlan, model_name: str) -> list[str]:
    """Markdown lines: one row per group."""
    lines = [
        "# Combination benchmark",
        "",
        f"Model: {model_name}; references: the '{plan.reference_set}' set; "
        f"{plan.combinations} combinations per group × {plan.prompts} prompts; each attribute "
        "at λ = 1 under its own word ("
        + ("tuned under it" if plan.own_words else "tuned under `sks` and re-based to it")
        + "); DDIM 25 steps, CFG 5. Joint: every transferred attribute "
        "AND the rest of the prompt. Lift: joint with the attributes minus joint of the same "
        "prompts untuned, with a 95 % bootstrap interval over combinations. Product: the "
        "singles' own joints multiplied (what independent attributes would give).",
        "",
        "| combination | joint: untuned → combined | lift [95 % CI] | transfer (per kind; alone) "
        "| fidelity | product of singles' joints | combined / product |",
        "|---|---|---|---|---|---|---|",
    ]
    for group in plan.groups:
        f = group_figures(records, group)
        if not f:
            continue
        centre, low, high = f["lift"]
        per_kind = ", ".join(
            f"{k} {100 * v:.0f} % ({100 * f['single_transfer_by_kind'][k]:.0f} %)"
            for k, v in f["transfer_by_kind"].items()
        )
        lines.append(
            f"| {group} ({f['combinations']}) | {100 * f['untuned_joint']:.0f} % → "
            f"**{100 * f['joint']:.0f} %** | **{100 * centre:+.0f}** [{100 * low:+.0f}, "
            f"{100 * high:+.0f}] | {per_kind} | {100 * f['fidelity']:.0f} % | "
            f"{100 * f['singles_joint_product']:.0f} % | {f['joint_over_product']:.2f}× |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ostaf.world.combination_bench",
        description="Measure attributes combined (pairs and the triple) on the demo world.",
    )
    parser.add_argument("--combinations", type=int, default=24, help="per group")
    parser.add_argument("--prompts", type=int, default=16, help="per combination")
    parser.add_argument("--groups", default="", help=f"comma-separated: {', '.join(GROUPS)}")
    parser.add_argument("--reference-set", default="bench", choices=list(REFERENCE_SETS))
    parser.add_argument("--model", default="demo", help="'demo', 'demo-xl' or a model folder")
    parser.add_argument("--single-cache", type=Path, required=True, help="an attribute bench cache")
    parser.add_argument("--cache", type=Path, required=True, help="resumable combination results")
    parser.add_argument("--out", type=Path, default=Path("docs/combination_bench.md"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--part", default="0/1", metavar="I/N")
    parser.add_argument(
        "--own-words",
        action="store_true",
        help="singles tuned under their combination words (not tuned with sks and re-based)",
    )
    parser.add_argument(
        "--untuned-from", type=Path, default=None, help="reuse untuned scores of this cache"
    )
    args = parser.parse_args(argv)
    groups = tuple(g for g in args.groups.split(",") if g) or tuple(GROUPS)
    if unknown := [g for g in groups if g not in GROUPS]:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    part, parts = (int(n) for n in args.part.split("/"))

    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch

    from ostaf.models.base_model import load_base_model

    torch.set_num_threads(args.threads)
    model = load_base_model(args.model, device="cpu", precision="fp32")
    plan = ComboPlan(
        args.combinations, args.prompts, groups, args.reference_set, own_words=args.own_words
    )

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    singles = Bench(args.single_cache, model, log)
    records = ComboBench(args.cache, singles, log, args.untuned_from).run(plan, part, parts)
    if parts > 1 and part != parts - 1:
        return 0
    everything = [
        ComboRecord(**json.loads(p.read_text())) for p in sorted(args.cache.glob("*.json"))
    ]
    lines = report(everything or records, plan, model.name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
