"""Learning all three kinds from one reference ("Learn all three"): the request (no torch).

One description of the reference names each kind's words by a placeholder of its own, e.g.
"a {appearance} {shape}, {style} style, on a white background"; the run tunes shape,
appearance and style together on it (each with its own word, region and `KIND_TUNING`
values) and saves three attributes. Each kind's settings are an ordinary `TuningSettings`,
whose description is the one a single run of that kind would tune on (its own placeholder
as {token}, the other kinds' words where they are known): the "three passes" variant runs
exactly those.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ostaf.errors import SettingsError
from ostaf.library.attribute_meta import check_attribute_name
from ostaf.limits import MAX_CAPTION
from ostaf.method.regions import AttributeKind, prior_prompt
from ostaf.method.words import replace_word
from ostaf.requests import (
    DEFAULT_PRESET,
    ModelChoice,
    TuningSettings,
    check_checkpoint_interval,
    preset_steps,
)

# The order the three are shown, tuned in (three passes) and named in.
ALL_KINDS = (AttributeKind.SHAPE, AttributeKind.APPEARANCE, AttributeKind.STYLE)
# The description when the user gives none (a model whose pictures are not known here).
JOINT_TEMPLATE = "a {appearance} {shape} in {style} style"
# What every kind must share in one pass: the loop draws one set of samples per step.
SHARED = (
    "steps",
    "seed",
    "timesteps_per_step",
    "timesteps_per_pass",
    "size",
    "crop",
    "mask",
    "memory_saving",
    "memory_budget_mb",
    "preview_every",
    "preview_steps",
)


def placeholder(kind: AttributeKind) -> str:
    """Where `kind`'s words go in the description: "{shape}", "{appearance}", "{style}"."""
    return "{" + AttributeKind(kind).value + "}"


def marked(caption: str, words: Mapping[AttributeKind, str]) -> str:
    """`caption` with every kind's word written as its placeholder (either form is read)."""
    text = caption
    for kind, word in words.items():
        text = replace_word(text, word, placeholder(kind))
    return " ".join(text.split())


def joint_prompt(caption: str, words: Mapping[AttributeKind, str]) -> str:
    """The prompt the one pass tunes on: each placeholder written as its kind's word."""
    text = marked(caption, words)
    for kind, word in words.items():
        text = text.replace(placeholder(kind), word)
    return text


def kind_caption(
    caption: str,
    kind: AttributeKind,
    words: Mapping[AttributeKind, str],
    described: Mapping[AttributeKind, str] | None = None,
    class_word: str = "",
) -> str:
    """The description a single run of `kind` tunes on: its placeholder as {token}, each other
    kind's placeholder as the reference's own words for it (`described`, e.g. the demo
    world's "red striped") or, where those are not known, left out as prior preservation
    leaves an attribute out ("{style} style" goes, a shape becomes the class word)."""
    text = marked(caption, words)
    for other in ALL_KINDS:
        if other is kind:
            continue
        known = (described or {}).get(other, "").strip()
        if known:
            text = _put(text, placeholder(other), known)
        else:
            text = prior_prompt(other, text, placeholder(other), class_word)
    return " ".join(text.replace(placeholder(kind), "{token}").split())


def _put(text: str, mark: str, value: str) -> str:
    """`text` with `mark` written `value`; "a" before it becomes "an" before a vowel (the
    demo world's captions follow that rule: "an orange striped star")."""
    if value[:1].lower() in "aeiou":
        text = re.sub(rf"\b([Aa])(\s+){re.escape(mark)}", rf"\1n\2{mark}", text)
    return text.replace(mark, value)


@dataclass
class DecomposeSettings:
    """How to learn shape, appearance and style from one reference: each kind's own settings
    (its word, rates, strength and single-run description) and the one description with the
    three placeholders that the one pass tunes on. `one_pass` False: three ordinary runs.

    `samples` (one pass only): "split", the default, gives each kind samples of its own each
    step (half as many as its single run draws), on its single run's own description, seen by
    its offsets alone; "shared" lets the three kinds see every sample together, on the one
    description. On 8 held-out references split keeps each kind at its single run's joint
    (shape -2, appearance +5, style +17 points) where shared lost appearance (-33) and shape
    (-11): there the words and the decoder's two kinds explained the same pixels together
    (BENCHMARKS.md, "Learn all three")."""

    members: dict[AttributeKind, TuningSettings]
    caption: str = JOINT_TEMPLATE
    one_pass: bool = True
    samples: str = "split"

    @classmethod
    def create(
        cls,
        words: Mapping[AttributeKind, str],
        caption: str = "",
        described: Mapping[AttributeKind, str] | None = None,
        preset: str = DEFAULT_PRESET,
        one_pass: bool = True,
        class_word: str = "",
        **shared: Any,
    ) -> DecomposeSettings:
        """Each kind's defaults (`TuningSettings.for_kind`) with its word from `words`, the
        `shared` values (steps, seed, size…) and its own description derived from `caption`
        (default: `JOINT_TEMPLATE`) and the reference's `described` words."""
        caption = " ".join(caption.split()) or JOINT_TEMPLATE
        missing = [str(kind) for kind in ALL_KINDS if not words.get(kind)]
        if missing:
            raise SettingsError(f"learning all three needs a word for {', '.join(missing)}")
        steps = shared.pop("steps", None) or max(preset_steps(k, preset) for k in ALL_KINDS)
        members = {
            kind: TuningSettings.for_kind(
                kind,
                preset,
                steps=steps,
                token=words[kind],
                caption=kind_caption(caption, kind, words, described, class_word),
                class_word=class_word,
                **shared,
            )
            for kind in ALL_KINDS
        }
        return cls(members, caption, one_pass)

    @property
    def words(self) -> dict[AttributeKind, str]:
        return {kind: settings.token for kind, settings in self.members.items()}

    @property
    def steps(self) -> int:
        """The steps of the whole job: one run's in one pass, the three runs' in three."""
        counts = [settings.steps for settings in self.members.values()]
        return counts[0] if self.one_pass else sum(counts)

    def prompt(self) -> str:
        """The one description with every placeholder written as its kind's word."""
        return joint_prompt(self.caption, self.words)

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value."""
        if not isinstance(self.members, dict) or set(self.members) != set(ALL_KINDS):
            raise SettingsError("learning all three needs settings for shape, appearance, style")
        self._check_caption()
        if self.samples not in ("shared", "split"):
            raise SettingsError(f"samples must be 'shared' or 'split', not {self.samples!r}")
        for kind, settings in self.members.items():
            if AttributeKind(settings.kind) is not kind:
                raise SettingsError(f"the {kind} settings are for {settings.kind}")
            settings.validate()
            if settings.rotate:
                raise SettingsError("quarter turns are off when learning all three")
        seen: dict[str, AttributeKind] = {}
        for kind, settings in self.members.items():
            word = settings.token.lower()
            if word in seen:
                raise SettingsError(
                    f"{seen[word]} and {kind} both use the word '{word}'; give each its own"
                )
            seen[word] = kind
        for name in SHARED:
            values = {kind: getattr(s, name) for kind, s in self.members.items()}
            if len(set(map(repr, values.values()))) > 1:
                raise SettingsError(
                    f"shape, appearance and style must share their {name.replace('_', ' ')} "
                    f"(now {', '.join(f'{k}: {v!r}' for k, v in values.items())})"
                )

    def _check_caption(self) -> None:
        caption = self.caption
        if not isinstance(caption, str) or not caption.strip():
            raise SettingsError("the description of the reference is empty")
        text = marked(caption, self.words)
        missing = [placeholder(kind) for kind in ALL_KINDS if placeholder(kind) not in text]
        if missing:
            raise SettingsError(
                f"the description must name {', '.join(missing)} where that kind's words "
                "would be, e.g. 'a {appearance} {shape}, {style} style, on a white background'"
            )
        strays = sorted(set(re.findall(r"\{[^{}]*\}", text)) - {placeholder(k) for k in ALL_KINDS})
        if strays:
            raise SettingsError(
                f"the description holds {', '.join(strays)}; use only {{shape}}, "
                "{appearance} and {style}"
            )
        if len(self.prompt()) > MAX_CAPTION:
            raise SettingsError("the reference description is too long; keep it to one line")

    def to_record(self) -> dict[str, Any]:
        """These settings as JSON-able data (read back by `from_record`)."""
        return {
            "caption": self.caption,
            "one_pass": self.one_pass,
            "samples": self.samples,
            "members": {str(kind): self.members[kind].to_record() for kind in ALL_KINDS},
        }

    @classmethod
    def from_record(cls, record: object) -> DecomposeSettings:
        """Settings from `to_record` data; SettingsError on garbage."""
        if not isinstance(record, dict) or not isinstance(record.get("members"), dict):
            raise SettingsError("the saved settings of learning all three are damaged")
        caption, one_pass = record.get("caption"), record.get("one_pass", True)
        samples = record.get("samples", "shared")  # runs saved before the choice shared them
        if not isinstance(caption, str) or type(one_pass) is not bool:
            raise SettingsError("the saved settings of learning all three are damaged")
        if samples not in ("shared", "split"):
            raise SettingsError("the saved settings of learning all three are damaged")
        try:
            members = {
                AttributeKind(kind): TuningSettings.from_record(value)
                for kind, value in record["members"].items()
            }
        except ValueError as exc:  # an unknown kind
            raise SettingsError(
                f"the saved settings of learning all three are damaged ({exc})"
            ) from exc
        settings = cls(members, caption, one_pass, samples)
        settings.validate()
        return settings


@dataclass
class DecomposeJob:
    """Learn all three from `image` and save them to `outs`, one file per kind."""

    image: Path
    settings: DecomposeSettings
    outs: dict[AttributeKind, Path]
    names: dict[AttributeKind, str] = field(default_factory=dict)  # "" or absent: a default
    model: ModelChoice = field(default_factory=ModelChoice)
    checkpoint: Path | None = None  # resumable state of the one pass (three passes: none)
    checkpoint_interval_s: float = 10.0

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value (settings included)."""
        self.settings.validate()
        for name in self.names.values():
            if name:
                check_attribute_name(name)
        if set(self.outs) != set(ALL_KINDS):
            raise SettingsError("learning all three writes one file for each kind")
        paths = [Path(path) for path in self.outs.values()]
        if len(set(paths)) != len(paths):
            raise SettingsError("the three attributes need three different files")
        for path in paths:
            if path.suffix != ".safetensors":
                raise SettingsError(f"output {path} must end in .safetensors")
        check_checkpoint_interval(self.checkpoint_interval_s)
