"""Levers for appearance that are not settings of the app, measured on the attribute
benchmark with the tuning loop or the prompts patched (BENCHMARKS.md, issue 13's seventh stop).

A probe's records go into CACHE/probe-<probe's cache>/, a benchmark cache of its own; the
comparison pairs them with the benchmark's own records in CACHE, reference by reference.

    python -m bench.attribute_probes run cosine --cache C --seed 0 --part 0/2   # and 1/2
    python -m bench.attribute_probes compare cosine --cache C

- cosine: the learning rate decays to 0 over the run along a half cosine (constant in the app).
- twice: the placeholder written once for each word it replaces, "a sks sks star" for "a red
  striped star", in the tuning description and in every prompt; the untuned renders are made
  again with those prompts.
- twice-word: as twice, with the placeholder's word learned (at 1e-3, as appearance's default).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Any
from unittest import mock

from ostaf.method.regions import AttributeKind
from ostaf.world.attribute_bench import CATALOGUE, Bench, Record, Variant
from ostaf.world.attribute_report import (
    METRICS,
    difference,
    interval,
    lift,
    per_reference,
    untuned_key,
)

KIND = AttributeKind.APPEARANCE
PROMPTS = 16


@dataclass(frozen=True)
class Probe:
    cache: str  # the folder under CACHE its records go to
    variant: Variant  # what it runs in that folder
    patch: Callable[[int], Any]  # a context manager of the run's step count
    baselines: tuple[str, ...]  # the benchmark's own variants it is paired with


@contextmanager
def cosine_rate(steps: int) -> Iterator[None]:
    """Every optimiser the tuning loop makes decays its groups' rates along a half cosine,
    from their own rates at the first step to 0 after `steps`."""
    import torch

    import ostaf.method.tuning as tuning

    made = tuning.make_optimizer

    def decaying(groups: list[Any], lr: float) -> torch.optim.Optimizer:
        optimizer = made(groups, lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda taken: 0.5 * (1 + math.cos(math.pi * min(taken / steps, 1.0)))
        )
        optimizer.register_step_post_hook(lambda *_: schedule.step())
        return optimizer

    with mock.patch.object(tuning, "make_optimizer", decaying):
        yield


@contextmanager
def placeholder_twice(steps: int) -> Iterator[None]:
    """Appearance's prompts (and so its tuning description) with the placeholder in both of
    the words it replaces: colour and pattern."""
    from ostaf.world import attribute_cases
    from ostaf.world.scenes import caption

    written = attribute_cases.Case.prompt

    def prompt(case: attribute_cases.Case, form: Any, token: str = "sks") -> str:
        if case.kind is not KIND or form != "token":
            return written(case, form, token)
        words = caption(case.expected).split(" ")
        return " ".join(["a", token, token, *words[3:]])

    with mock.patch.object(attribute_cases.Case, "prompt", prompt):
        yield


# The first two change the default as it was before appearance learned its word (the
# benchmark's 'hypernetwork-lr0.0003-strength1-emb0'); the third writes the placeholder twice
# with the word learned and the offsets at their tuned size, at that time's rate
# ('hypernetwork-lr0.0003-strength1').
WITHOUT_WORD = CATALOGUE["hypernetwork-lr0.0003-strength1-emb0"]
WITH_WORD = CATALOGUE["hypernetwork-lr0.0003-strength1"]
UNTUNED = untuned_key(WITHOUT_WORD)  # every probe writes the placeholder "sks"
PROBES = {
    "cosine": Probe("probe-cosine", WITHOUT_WORD, cosine_rate, (WITHOUT_WORD.key,)),
    "twice": Probe("probe-twice", WITHOUT_WORD, placeholder_twice, (WITHOUT_WORD.key,)),
    "twice-word": Probe("probe-twice", WITH_WORD, placeholder_twice, (WITH_WORD.key,)),
}


def run(name: str, cache: Path, references: int, seed: int, part: int, parts: int) -> None:
    import torch

    from ostaf.models.base_model import load_base_model
    from ostaf.models.offline import quiet_libraries
    from ostaf.requests import TuningSettings
    from ostaf.world.attribute_cases import references as draw

    quiet_libraries()
    torch.set_num_threads(1)
    probe = PROBES[name]
    folder = cache / probe.cache
    pictures = cache / "references"  # the reference pictures are the benchmark's
    if pictures.is_dir() and not (folder / "references").exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "references").symlink_to(pictures.resolve())

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    bench = Bench(folder, load_base_model("demo", device="cpu"), log)
    scenes = draw(KIND, references)
    steps = TuningSettings.for_kind(KIND).steps
    with probe.patch(steps):
        for index in range(part, references, parts):
            if probe.patch is placeholder_twice:
                bench.untuned("sks", KIND, index, scenes[index], PROMPTS)
            record = bench.record(probe.variant, KIND, index, scenes[index], PROMPTS, seed=seed)
            joint = sum(score["joint"] for score in record.scores["1"])
            log(f"{name} #{index} seed {seed}: joint {joint:g}/{PROMPTS}")


def records_in(folder: Path) -> list[Record]:
    """Every appearance record of a benchmark cache (tuned, untuned)."""
    return [
        Record(**json.loads(path.read_text())) for path in sorted(folder.glob(f"*/{KIND}-*.json"))
    ]


def compare(name: str, cache: Path) -> list[str]:
    """The probe against each of its baselines, paired on the references and tuning seeds
    both have: metrics, lift, and the paired difference with its 95 % interval."""
    probe = PROBES[name]
    own = records_in(cache / probe.cache)
    base = records_in(cache)
    mine = {(r.reference, r.seed) for r in own if r.variant == probe.variant.key}
    # A probe that keeps the benchmark's prompts has no untuned renders of its own.
    untuned = [r for r in own if r.variant == UNTUNED] or [r for r in base if r.variant == UNTUNED]
    base_untuned = [r for r in base if r.variant == UNTUNED]
    lines = []
    for baseline in probe.baselines:
        theirs = {(r.reference, r.seed) for r in base if r.variant == baseline}
        pairs = mine & theirs
        seeds = {seed for _, seed in pairs}
        refs = {ref for ref, _ in pairs}
        a = [r for r in own if (r.reference, r.seed) in pairs]
        b = [r for r in base if (r.reference, r.seed) in pairs]
        lines.append(
            f"{name} ({probe.variant.key}) vs {baseline}: {len(refs)} references, "
            f"tuning seeds {sorted(seeds)}"
        )
        for metric in METRICS:
            first = per_reference(a, probe.variant.key, str(KIND), "1", metric)
            second = per_reference(b, baseline, str(KIND), "1", metric)
            lines.append(_row(metric, first, second))
        lines.append(
            _row(
                "lift",
                lift([*a, *untuned], probe.variant, str(KIND)),
                lift([*b, *base_untuned], CATALOGUE[baseline], str(KIND)),
            )
        )
    return lines


def _row(label: str, first: dict[int, float], second: dict[int, float]) -> str:
    gap, low, high = (100 * x for x in interval(difference(first, second)))
    return (
        f"  {label:9s} {100 * mean(first.values()):5.1f} vs {100 * mean(second.values()):5.1f}: "
        f"{gap:+.1f} [{low:+.1f}, {high:+.1f}]"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attribute_probes")
    parser.add_argument("action", choices=("run", "compare"))
    parser.add_argument("probe", choices=sorted(PROBES))
    parser.add_argument("--cache", type=Path, required=True, help="the benchmark's cache")
    parser.add_argument("--references", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0, help="tuning seed (run)")
    parser.add_argument("--part", default="0/1", metavar="I/N")
    args = parser.parse_args(argv)
    if args.action == "compare":
        print("\n".join(compare(args.probe, args.cache)))
        return 0
    part, parts = (int(x) for x in args.part.split("/"))
    run(args.probe, args.cache, args.references, args.seed, part, parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
