"""The untuned pull of candidate placeholder words on the demo model.

A placeholder word should mean little to the base model: "sks" in the shape slot makes the
untuned demo model draw hearts, so every attribute named "sks" starts from a heart. For each
candidate this renders the attribute benchmark's prompts (held-out references, prompts that
ask for other subjects) with the candidate where each kind's words would be, and the same
prompts, with the same seeds, without it ("a blue dotted shape, …", "a star, …", "…, on a
white background" with no style). The oracle reads both pictures. A render is *pulled* when
the oracle reads, for some attribute, a value that the word-less render of its seed did not
show and that the prompt did not ask for: the word alone put it there. *Off-prompt* is the
share of renders that miss what the prompt asked (any colour, pattern, shape, style or
background it names), with the word and without.

    python -m bench.word_pull                      # the demo candidates, about 4 minutes
    python -m bench.word_pull --words sks,q --references 2 --prompts 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ostaf.method.regions import AttributeKind
from ostaf.method.words import DEMO_CANDIDATES
from ostaf.world.attribute_bench import RENDER_GUIDANCE, RENDER_STEPS, case_seed
from ostaf.world.attribute_cases import SUBJECT_ATTRIBUTES, TRANSFERRED, Case, cases, references

KINDS = tuple(AttributeKind)


@dataclass
class WordPull:
    """What one candidate word did to the untuned model's pictures, over every kind's slot."""

    word: str
    renders: int
    pulled: float  # share of renders with an attribute the word alone put there
    off_prompt: float  # share that miss what the prompt asked, with the word
    off_prompt_without: float  # the same prompts and seeds without the word
    by_kind: dict[str, float]  # pulled, per kind's slot
    favourite: dict[str, str]  # per kind: the open slot's most read value and its share


def _asked(case: Case) -> dict[str, str]:
    """What the prompt names: every subject attribute the kind does not carry, and the
    background."""
    moved = TRANSFERRED[case.kind]
    names = [name for name in SUBJECT_ATTRIBUTES if name not in moved]
    return {name: getattr(case.expected, name) for name in (*names, "background")}


def _render(model: Any, prompts: Sequence[str], seeds: Sequence[int]) -> list[Any]:
    from ostaf.render.rendering import pipeline_for
    from ostaf.world.prompt_following import render_prompts

    pipe = pipeline_for(model, "ddim")
    return render_prompts(pipe, prompts, seeds, RENDER_STEPS, RENDER_GUIDANCE)


def measure(
    model: Any, words: Sequence[str], reference_count: int, prompt_count: int
) -> list[WordPull]:
    """Each word's pull on `model` (untuned), sorted from the least pulled."""
    from ostaf.world.oracle import analyse

    chosen = [
        case
        for kind in KINDS
        for index, scene in enumerate(references(kind, reference_count))
        for case in cases(scene, kind, prompt_count, seed=case_seed(index))
    ]
    seeds = [case.seed for case in chosen]
    plain = [
        analyse(i).attributes()
        for i in _render(model, [c.prompt("omitted") for c in chosen], seeds)
    ]
    found = []
    for word in words:
        images = _render(model, [case.prompt("token", word) for case in chosen], seeds)
        seen = [analyse(image).attributes() for image in images]
        pulled: list[bool] = []
        misses, misses_without = 0, 0
        open_values: dict[str, Counter[str]] = {str(kind): Counter() for kind in KINDS}
        for case, with_word, without in zip(chosen, seen, plain, strict=True):
            asked = _asked(case)
            pulled.append(
                any(
                    with_word[name] != without[name] and with_word[name] != asked.get(name)
                    for name in with_word
                )
            )
            misses += any(with_word[name] != value for name, value in asked.items())
            misses_without += any(without[name] != value for name, value in asked.items())
            slot = TRANSFERRED[case.kind][0]
            open_values[str(case.kind)][str(with_word[slot])] += 1
        per_kind = len(chosen) // len(KINDS)
        by_kind = {
            str(kind): sum(pulled[i * per_kind : (i + 1) * per_kind]) / per_kind
            for i, kind in enumerate(KINDS)
        }
        favourite = {}
        for kind, counts in open_values.items():
            value, count = counts.most_common(1)[0]
            favourite[kind] = f"{value} {count / per_kind:.0%}"
        found.append(
            WordPull(
                word,
                len(chosen),
                sum(pulled) / len(chosen),
                misses / len(chosen),
                misses_without / len(chosen),
                by_kind,
                favourite,
            )
        )
    return sorted(found, key=lambda pull: (pull.pulled, pull.off_prompt))


def table(found: Sequence[WordPull]) -> str:
    """The figures as a Markdown table, least pulled first."""
    kinds = [str(kind) for kind in KINDS]
    lines = [
        "| word | pulled | " + " | ".join(f"pulled: {k}" for k in kinds) + " | off-prompt "
        "(without the word) | open slot's most read value: " + ", ".join(kinds) + " |",
        "|---" * (4 + len(kinds)) + "|",
    ]
    for pull in found:
        lines.append(
            f"| {pull.word} | {pull.pulled:.0%} | "
            + " | ".join(f"{pull.by_kind[k]:.0%}" for k in kinds)
            + f" | {pull.off_prompt:.0%} ({pull.off_prompt_without:.0%}) | "
            + ", ".join(pull.favourite[k] for k in kinds)
            + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.word_pull", description=__doc__)
    parser.add_argument("--words", default=",".join(DEMO_CANDIDATES), help="comma-separated")
    parser.add_argument("--references", type=int, default=4, help="per kind")
    parser.add_argument("--prompts", type=int, default=4, help="per reference")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    import torch

    from ostaf.models.base_model import load_base_model

    torch.set_num_threads(1)  # a shared CPU: one thread is faster than two that wait
    started = time.perf_counter()
    model = load_base_model("demo", device="cpu")
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    found = measure(model, words, args.references, args.prompts)
    print(table(found))
    print(f"\n{found[0].renders} renders per word, {time.perf_counter() - started:.0f} s")
    if args.out is not None:
        args.out.write_text(json.dumps([asdict(p) for p in found], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
