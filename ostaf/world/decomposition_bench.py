"""One picture, three attributes: `python -m ostaf.world.decomposition_bench`.

For each held-out reference, "Learn all three" (ostaf/method/decompose.py) learns its shape,
appearance and style in one pass, and the same three are learned alone (three ordinary runs
with the same settings, words and descriptions). Per kind, both are scored on the attribute
benchmark's own cases for that kind (the prompts name a new subject and use the kind's word),
paired per reference, beside the same prompts untuned. Then the three recombined on a new
subject: each kind's attribute from a different reference's run, all three applied at λ = 1
(combination_bench's prompts), the one-pass attributes against the ones learned alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from statistics import mean
from typing import Any

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_bench import RENDER_GUIDANCE, RENDER_STEPS, case_seed, scored
from ostaf.world.attribute_cases import REFERENCE_SETS, cases, references
from ostaf.world.combination_bench import (
    APPEARANCE,
    OFFSETS,
    SHAPE,
    STYLE,
    WORDS,
    ComboCase,
    combo_cases,
    combo_score,
    seen_attributes,
)
from ostaf.world.scenes import Scene

KINDS = (SHAPE, APPEARANCE, STYLE)
# The all-three run (its kinds sharing every sample and one description), three ordinary
# runs, and the all-three run with each kind on samples and a description of its own.
HOW = ("one pass", "alone", "split pass")
TOGETHER = ("one pass", "split pass")


def joint_caption(scene: Scene) -> str:
    """The reference's description with each kind's words as its placeholder."""
    return f"a {{appearance}} {{shape}}, {{style}} style, on a {scene.background} background"


def described(scene: Scene) -> dict[AttributeKind, str]:
    """The reference's own words for each kind (what the demo world's oracle reads)."""
    return {SHAPE: scene.shape, APPEARANCE: f"{scene.colour} {scene.pattern}", STYLE: scene.style}


@dataclass
class UnitRecord:
    """One reference: per way of learning and kind, the kind's cases scored at λ = 1; the
    kind's cases untuned; and the seconds each way took."""

    reference: int
    scores: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    untuned: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    recombined: dict[str, list[dict[str, float]]] = field(default_factory=dict)


class DecompositionBench:
    """Runs and caches the decomposition on one loaded model."""

    def __init__(
        self,
        cache: Path,
        model: Any,
        log: Any = print,
        steps: int | None = None,
        ways: Sequence[str] = HOW,
    ) -> None:
        self.cache, self.model, self.log = cache, model, log
        self.steps = steps  # None: the Balanced preset's
        self.ways = tuple(ways)  # which of HOW to run ("alone" is every comparison's base)
        cache.mkdir(parents=True, exist_ok=True)

    def attributes(self, scene: Scene, index: int, how: str) -> tuple[dict, float]:
        """The three attributes learned from `scene` one way (cached), and the seconds."""
        from ostaf.decompose_request import DecomposeSettings
        from ostaf.images import load_reference
        from ostaf.library.attribute_file import load_attribute, save_attribute
        from ostaf.method.decompose import learn_all

        folder = self.cache / how.replace(" ", "-") / str(index)
        paths = {kind: folder / f"{kind}.safetensors" for kind in KINDS}
        timing = folder / "seconds.json"
        if all(p.is_file() for p in paths.values()) and timing.is_file():
            seconds = float(json.loads(timing.read_text()))
            return {kind: load_attribute(p) for kind, p in paths.items()}, seconds
        image = self.cache / "references" / f"{index}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        scene.render(64).save(image)
        reference = load_reference(image, self.model.resolution)
        settings = DecomposeSettings.create(
            WORDS,
            joint_caption(scene),
            described(scene),
            one_pass=how != "alone",
            seed=0,
            steps=self.steps,
        )
        self.log(f"learning all three of #{index} ({how})")
        started = time.perf_counter()
        settings = replace(settings, samples="split" if how == "split pass" else "shared")
        result = learn_all(self.model, reference, settings)
        seconds = time.perf_counter() - started
        folder.mkdir(parents=True, exist_ok=True)
        for kind, attribute in result.attributes.items():
            save_attribute(paths[kind], attribute)
        timing.write_text(json.dumps(round(seconds, 2)))
        return result.attributes, seconds

    def unit(self, scenes: Sequence[Scene], index: int, prompts: int) -> UnitRecord:
        """Score one reference's three attributes, learned every way of HOW (cached; a way
        added later is run for a cached record too)."""
        path = self.cache / f"unit-{index}.json"
        record = UnitRecord(**json.loads(path.read_text())) if path.is_file() else UnitRecord(index)
        missing = [how for how in self.ways if how not in record.scores]
        if not missing:
            return record
        from ostaf.world.oracle import analyse

        scene = scenes[index]
        reference = analyse(scene.render(64))
        for how in missing:
            attributes, record.seconds[how] = self.attributes(scene, index, how)
            record.scores[how] = {}
            for kind in KINDS:
                chosen = cases(scene, kind, prompts, seed=case_seed(index))
                prompts_ = [case.prompt("token", WORDS[kind]) for case in chosen]
                seeds = [case.seed for case in chosen]
                if str(kind) not in record.untuned:
                    images = self._render(prompts_, seeds, [])
                    record.untuned[str(kind)] = [
                        scored(c, i, reference) for c, i in zip(chosen, images, strict=True)
                    ]
                images = self._render(prompts_, seeds, [attributes[kind]])
                record.scores[how][str(kind)] = [
                    scored(c, i, reference) for c, i in zip(chosen, images, strict=True)
                ]
        path.write_text(json.dumps(asdict(record), indent=1))
        return record

    def recombine(self, scenes: Sequence[Scene], index: int, prompts: int) -> UnitRecord:
        """Each kind's attribute from another reference's run, the three applied together."""
        path = self.cache / f"unit-{index}.json"
        record = UnitRecord(**json.loads(path.read_text()))
        missing = [how for how in self.ways if how not in record.recombined]
        if not missing:
            return record
        count = len(scenes)
        picks = {kind: (index + OFFSETS[kind]) % count for kind in KINDS}
        chosen = {kind: scenes[i] for kind, i in picks.items()}
        combos: list[ComboCase] = combo_cases(chosen, prompts, seed=case_seed(index) + 97)
        texts = [case.prompt(WORDS) for case in combos]
        seeds = [case.seed for case in combos]
        for how in missing:
            applied = [self.attributes(chosen[k], picks[k], how)[0][k] for k in KINDS]
            images = self._render(texts, seeds, applied)
            record.recombined[how] = [
                combo_score(case, seen_attributes(image))
                for case, image in zip(combos, images, strict=True)
            ]
        path.write_text(json.dumps(asdict(record), indent=1))
        return record

    def _render(self, prompts: list[str], seeds: list[int], applied: list) -> list:
        from ostaf.render.rendering import apply_attributes, pipeline_for
        from ostaf.world.prompt_following import render_prompts

        apply_attributes(self.model, [(attribute, 1.0) for attribute in applied])
        try:
            pipe = pipeline_for(self.model, "ddim")
            return render_prompts(pipe, prompts, seeds, RENDER_STEPS, RENDER_GUIDANCE)
        finally:
            self.model.merger.restore()


def report(records: Sequence[UnitRecord], model_name: str, reference_set: str) -> list[str]:
    """Markdown: per kind, joint one pass vs alone (paired) and the lift over untuned; the
    recombination; the time."""
    from ostaf.world.attribute_report import interval

    def per(how: str, kind: str, metric: str) -> dict[int, float]:
        return {
            r.reference: mean(s[metric] for s in r.scores[how][kind])
            for r in records
            if how in r.scores
        }

    lines = [
        "# Decomposition benchmark",
        "",
        f"Model: {model_name}; references: the first {len(records)} style references of the "
        f"'{reference_set}' set (each shows a shape, a look and a style); words {WORDS[SHAPE]} "
        f"(shape), {WORDS[APPEARANCE]} (appearance), {WORDS[STYLE]} (style); tuning seed 0; "
        "λ = 1. Paired differences per reference, 95 % bootstrap intervals.",
        "",
        "| kind | joint untuned | learned alone | one pass | one pass − alone "
        "| split pass | split pass − alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in (str(k) for k in KINDS):
        alone = per("alone", kind, "joint")
        untuned = {r.reference: mean(s["joint"] for s in r.untuned[kind]) for r in records}
        cells = [f"{100 * mean(untuned.values()):.0f} %", f"{100 * mean(alone.values()):.0f} %"]
        for how in TOGETHER:
            together = per(how, kind, "joint")
            if not together:
                cells += ["–", "–"]
                continue
            diff = {ref: together[ref] - alone[ref] for ref in together if ref in alone}
            centre, low, high = interval(diff)
            cells += [
                f"{100 * mean(together.values()):.0f} %",
                f"**{100 * centre:+.0f}** [{100 * low:+.0f}, {100 * high:+.0f}]",
            ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    recombined = [r for r in records if r.recombined]
    if recombined:
        by = {
            how: {r.reference: mean(s["joint"] for s in r.recombined[how]) for r in recombined}
            for how in HOW
            if all(how in r.recombined for r in recombined)
        }
        lines += [
            "",
            f"Recombined on a new subject (shape, look and style from three different references, "
            f"{len(recombined)} combinations): joint {100 * mean(by['alone'].values()):.0f} % with "
            "the attributes learned alone;",
        ]
        for how in TOGETHER:
            if how not in by:
                continue
            diff = {ref: by[how][ref] - by["alone"][ref] for ref in by[how]}
            centre, low, high = interval(diff)
            lines.append(
                f"- {how}: {100 * mean(by[how].values()):.0f} %, "
                f"{100 * centre:+.0f} [{100 * low:+.0f}, {100 * high:+.0f}] against alone."
            )
    times = {how: [r.seconds[how] for r in records if how in r.seconds] for how in HOW}
    if times["alone"]:
        lines += ["", f"Time (mean over references): three runs {mean(times['alone']):.1f} s;"]
        for how in TOGETHER:
            if times[how]:
                ratio = mean(times[how]) / mean(times["alone"])
                lines.append(f"- {how} {mean(times[how]):.1f} s: {ratio:.2f}×.")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ostaf.world.decomposition_bench",
        description="Measure Learn all three against each kind learned alone, on the demo world.",
    )
    parser.add_argument("--references", type=int, default=12)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--reference-set", default="unseen", choices=list(REFERENCE_SETS))
    parser.add_argument("--model", default="demo", help="'demo', 'demo-xl' or a model folder")
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/decomposition_bench.md"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None, help="default: the Balanced preset's")
    parser.add_argument("--part", default="0/1", metavar="I/N")
    parser.add_argument(
        "--ways", default=",".join(HOW), help=f"comma-separated, from: {', '.join(HOW)}"
    )
    args = parser.parse_args(argv)
    part, parts = (int(n) for n in args.part.split("/"))
    ways = tuple(w.strip() for w in args.ways.split(",") if w.strip())
    if "alone" not in ways or [w for w in ways if w not in HOW]:
        parser.error(f"--ways must include 'alone' and name only {', '.join(HOW)}")

    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch

    from ostaf.models.base_model import load_base_model

    torch.set_num_threads(args.threads)
    model = load_base_model(args.model, device="cpu", precision="fp32")

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    bench = DecompositionBench(args.cache, model, log, args.steps, ways)
    scenes = references(STYLE, args.references, args.reference_set)
    for index in range(args.references):
        if index % parts == part:
            bench.unit(scenes, index, args.prompts)
    if parts > 1:
        return 0
    records = [bench.recombine(scenes, i, args.prompts) for i in range(args.references)]
    lines = report(records, model.name, args.reference_set)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
