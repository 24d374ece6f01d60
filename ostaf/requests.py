"""Plain request dataclasses: the contract between the GUI/CLI and the core (no torch, no Qt)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ostaf.errors import SettingsError
from ostaf.images import Box
from ostaf.library.attribute_meta import check_attribute_name
from ostaf.limits import (
    MAX_CAPTION,
    MAX_CLASS_WORD,
    MAX_IMAGES,
    MAX_SIDE,
    TOKEN,
    check_crop,
)
from ostaf.method.regions import (
    DEFAULT_TOKEN,
    FLIP_ALLOWED,
    AttributeKind,
    Region,
    caption_names_token,
)

SAMPLERS = ("ddim", "euler", "dpmpp2m")
# Noise schedules of Euler and DPM++ 2M, as A1111/Forge's "Schedule type" names them (Karras:
# what A1111 1.9+ and Forge use for DPM++ 2M by default; Simple: integer timesteps, the one
# A1111 reproduces step for step) and "model": the model's own scheduler config, which every
# render used before schedules could be chosen. DDIM always follows the model's config.
SCHEDULES = ("karras", "simple", "model")
MAX_STEPS = 20_000
MAX_CHECKPOINT_INTERVAL_S = 86_400.0


@dataclass(frozen=True)
class QualityPreset:
    name: str
    steps: int
    summary: str


PRESETS = {
    "fast": QualityPreset("Fast", 150, "a quick sketch of the attribute"),
    "balanced": QualityPreset("Balanced", 300, "the default: good transfer in about a minute"),
    "best": QualityPreset("Best", 600, "the most faithful, twice as long"),
}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class KindTuning:
    """The learning rate and the Balanced step count a kind of attribute tunes with."""

    learning_rate: float
    steps: int
    prior: float = 0.0  # weight of the prior-preservation term (TuningSettings.prior)
    strength: float = 1.0  # what intensity 1 stands for (TuningSettings.strength)
    # The placeholder's embedding is learned at this rate (TuningSettings.embedding_rate).
    embedding_rate: float = 0.0


# One table for the CLI and the Learn panel, from the attribute benchmark (BENCHMARKS.md,
# "Attribute benchmark at full size"). The Fast and Best presets scale `steps` by the same
# factors as for every kind (150/300, 600/300). Shape's offsets are stored at 0.5 of the
# size tuning finds: with its word learned, that is 3 [1, 6] points more joint than 0.75
# (the best before the word: 7 [2, 12] over 0.5 then) on 88 references of both demo models'
# four reference sets, and no lower on any one set; at 3x, joint falls by 27-50 points.
# Style tunes with prior preservation, so that the placeholder carries the style, and learns
# the placeholder word itself (lr 1e-3), which "sks style" otherwise ties to soft flat
# pictures; with the word learned, its offsets are stored at 0.56 of their tuned size (0.7
# before the word).
# Appearance learns its word too (lr 1e-3): on 48 references x 2 seeds that is 8 [3, 13]
# points more joint than the model's word, from transfer (+10), at the same fidelity. Its
# offsets learn at 1e-5 and are stored at their tuned size: slow offsets leave the reference's
# colour and pattern to the word, which carries them to a new subject; on 24 references x 2
# seeds that is 20 [11, 28] points more joint than 3e-4 at 0.5 (the default before), level
# with the best plain LoRA (3e-4, strength 1.5: -1 [-5, +2]). Shape learns its word too
# (lr 1e-3, since issue 26): on the SDXL-shaped demo model, where the offsets alone barely
# moved a shape, that is 30 points more joint on 24 held-out references, and on the first
# demo model 9 [-1, +20] more on the same references (BENCHMARKS.md, "Shape learns its
# word"). Style's hypernetwork learns at 1e-3: on 24 references x 2 seeds its fidelity is
# 4 points higher than at 3e-4 (joint +2, within noise), level with the best plain LoRA's.
KIND_TUNING: dict[AttributeKind, KindTuning] = {
    AttributeKind.APPEARANCE: KindTuning(1e-5, 300, embedding_rate=1e-3),
    AttributeKind.SHAPE: KindTuning(3e-4, 300, strength=0.5, embedding_rate=1e-3),
    AttributeKind.STYLE: KindTuning(1e-3, 300, prior=1.0, strength=0.56, embedding_rate=1e-3),
}


def preset_steps(kind: AttributeKind, preset: str) -> int:
    """The step count of `preset` ("fast", "balanced", "best") for `kind`."""
    base = PRESETS[DEFAULT_PRESET].steps
    return max(1, round(KIND_TUNING[AttributeKind(kind)].steps * PRESETS[preset].steps / base))


@dataclass
class TuningSettings:
    """How to tune one attribute from one reference image."""

    kind: AttributeKind
    steps: int = PRESETS[DEFAULT_PRESET].steps
    # Shape's rate; `for_kind` gives each kind its own (KIND_TUNING).
    learning_rate: float = 3e-4
    rank: int = 4
    seed: int = 0
    timesteps_per_step: int = 4
    class_word: str = ""
    token: str = DEFAULT_TOKEN
    # The reference described with the attribute's words replaced by the token ("{token}"
    # or the token itself); "" = the kind's template prompt, as before this field existed.
    caption: str = ""
    timesteps: tuple[float, float] | None = None  # share of the timesteps; None: the kind's
    crop: Box | None = None
    mask: Path | None = None
    flip: bool | None = None  # None: the kind's default (never for shape)
    # Quarter turns of the reference as well (with the flips, all eight symmetries of the
    # square). Off for every kind: appearance lost 12 points of joint with them (BENCHMARKS.md,
    # issue 13's sixth stop); shape refuses them.
    rotate: bool = False
    region: Region | None = None  # None: the kind's region
    preview_every: int = 0  # 0: no previews
    preview_steps: int = 8
    memory_saving: bool = False  # gradient checkpointing (also turned on when memory is short)
    timesteps_per_pass: int = 0  # 0: as many as fit (the memory preflight decides)
    memory_budget_mb: int = 0  # 0: what the GPU has free; on the CPU, no limit
    size: int = 0  # square tuning resolution in px; 0: the model's native one (checked by it)
    # Prior preservation: the weight of a second loss that keeps the U-Net's prediction for
    # the description without the placeholder as the base model makes it, so that the offsets
    # act through the placeholder and leave the prompt's other words alone. 0: off.
    prior: float = 0.0
    # The tuned offsets are stored at this multiple, so that intensity 1 in the app (and
    # weight 1 in other tools) is the kind's best intensity on the attribute benchmark.
    strength: float = 1.0
    # The placeholder's word embedding is learned with the offsets at this learning rate
    # (ostaf.method.placeholder); 0: the placeholder keeps its meaning in the model.
    embedding_rate: float = 0.0

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value."""
        self.kind = AttributeKind(self.kind)
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("rank", self.rank, 1, 128)
        _check_int("timesteps per step", self.timesteps_per_step, 1, 64)
        _check_int("timesteps per pass", self.timesteps_per_pass, 0, 64)
        _check_int("memory budget (MB)", self.memory_budget_mb, 0, 2**30)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("preview interval", self.preview_every, 0, MAX_STEPS)
        _check_int("preview steps", self.preview_steps, 1, 200)
        _check_int("tuning size", self.size, 0, MAX_SIDE)
        if type(self.prior) not in (int, float) or not 0 <= self.prior <= 10:
            raise SettingsError(f"prior-preservation weight {self.prior!r} must be from 0 to 10")
        if type(self.strength) not in (int, float) or not 0.05 <= self.strength <= 4:
            raise SettingsError(f"strength {self.strength!r} must be from 0.05 to 4")
        rate = self.embedding_rate
        if type(rate) not in (int, float) or not math.isfinite(rate) or not 0 <= rate <= 1:
            raise SettingsError(
                f"embedding learning rate {rate!r} must be from 0 (off) to 1; try 3e-3"
            )
        if not math.isfinite(self.learning_rate) or not 0 < self.learning_rate <= 1:
            raise SettingsError(f"learning rate {self.learning_rate} must be in (0, 1]; try 1e-3")
        if not isinstance(self.token, str) or not TOKEN.fullmatch(self.token):
            raise SettingsError(
                f"placeholder token {self.token!r} must be one word of letters/digits"
            )
        if len(self.class_word) > MAX_CLASS_WORD:
            raise SettingsError("class word is too long; use one or two words like 'cat'")
        if len(self.caption) > MAX_CAPTION:
            raise SettingsError("the reference description is too long; keep it to one line")
        if self.caption.strip() and not caption_names_token(self.caption, self.token):
            raise SettingsError(
                f"the reference description must name the placeholder {{token}} (or "
                f"{self.token!r}) where the {self.kind}'s words would be, e.g. "
                f"'a red {{token}} on a white background'"
            )
        if self.timesteps is not None:
            low, high = self.timesteps
            if not (0 <= low < high <= 1):
                raise SettingsError(
                    f"timestep range {self.timesteps} must satisfy 0 <= low < high <= 1"
                )
        if self.crop is not None:
            try:
                check_crop(self.crop)
            except ValueError as exc:
                raise SettingsError(str(exc)) from exc
        if self.flip and self.kind is AttributeKind.SHAPE:
            raise SettingsError("horizontal flips would mirror the shape; they are off for shape")
        if self.rotate and self.kind is AttributeKind.SHAPE:
            raise SettingsError("quarter turns would turn the shape; they are off for shape")

    def flips(self) -> bool:
        """Whether tuning also sees the reference mirrored (the setting, else the kind's)."""
        return FLIP_ALLOWED[self.kind] if self.flip is None else self.flip

    @classmethod
    def for_kind(
        cls, kind: AttributeKind, preset: str = DEFAULT_PRESET, **changes: Any
    ) -> TuningSettings:
        """The defaults for `kind` (its learning rate and the preset's step count, from
        `KIND_TUNING`), with `changes` on top."""
        kind = AttributeKind(kind)
        values: dict[str, Any] = {
            "learning_rate": KIND_TUNING[kind].learning_rate,
            "steps": preset_steps(kind, preset),
            "prior": KIND_TUNING[kind].prior,
            "strength": KIND_TUNING[kind].strength,
            "embedding_rate": KIND_TUNING[kind].embedding_rate,
        }
        values.update(changes)
        return cls(kind=kind, **values)

    def to_record(self) -> dict[str, Any]:
        """These settings as JSON-able data (read back by `from_record`)."""
        record: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        record["kind"] = str(self.kind)
        record["crop"] = list(self.crop) if self.crop is not None else None
        record["mask"] = str(self.mask) if self.mask is not None else None
        record["timesteps"] = list(self.timesteps) if self.timesteps is not None else None
        del record["region"]
        if self.region is not None:
            record["region"] = self.region.to_dict()
        return record

    @classmethod
    def from_record(cls, record: object) -> TuningSettings:
        """Settings from `to_record` data (unknown keys ignored); SettingsError on garbage."""
        if not isinstance(record, dict):
            raise SettingsError("the saved tuning settings are not a settings record")
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        try:
            crop, mask, region = values.get("crop"), values.get("mask"), values.get("region")
            if crop is not None:
                if not isinstance(crop, list) or [type(v) for v in crop] != [int] * 4:
                    raise ValueError(f"crop {crop!r} is not four whole numbers")
                values["crop"] = tuple(crop)
            values["mask"] = None if mask is None else Path(mask)
            values["region"] = None if region is None else Region.from_dict(region)
            timesteps = values.get("timesteps")
            if timesteps is not None:
                if not isinstance(timesteps, list) or len(timesteps) != 2:
                    raise ValueError(f"timesteps {timesteps!r} is not two numbers")
                values["timesteps"] = (float(timesteps[0]), float(timesteps[1]))
            settings = cls(**values)
            texts = (settings.class_word, settings.token, settings.caption)
            flags = (
                type(settings.flip) in (bool, type(None)),
                type(settings.rotate) is bool,
                type(settings.memory_saving) is bool,
            )
            if not all(isinstance(t, str) for t in texts) or not all(flags):
                raise ValueError("a text or yes/no value has the wrong type")
            if type(settings.learning_rate) not in (int, float):
                raise ValueError(f"learning rate {settings.learning_rate!r} is not a number")
            settings.learning_rate = float(settings.learning_rate)
            settings.validate()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SettingsError(f"the saved tuning settings are damaged ({exc})") from exc
        return settings


@dataclass(frozen=True)
class AppliedAttribute:
    """An attribute file applied at intensity λ."""

    path: Path
    intensity: float = 1.0

    def validate(self) -> None:
        if not math.isfinite(self.intensity) or not 0 <= self.intensity <= 2:
            raise SettingsError(f"intensity {self.intensity} for {self.path.name} must be in 0..2")


@dataclass
class RenderSettings:
    """What to render: prompt, sampling, and the attributes applied."""

    prompt: str
    negative_prompt: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int = 25
    guidance: float | None = None  # None: the model's own (BaseModel.guidance)
    width: int | None = None  # None: the model's native resolution
    height: int | None = None
    sampler: str = "dpmpp2m"
    schedule: str = "karras"  # for euler and dpmpp2m; see SCHEDULES
    attributes: list[AppliedAttribute] = field(default_factory=list)

    @property
    def effective_schedule(self) -> str:
        """The schedule sampling really uses: DDIM's is always the model's own."""
        return effective_schedule(self.sampler, self.schedule)

    def validate(self, multiple_of: int = 8) -> None:
        if not self.prompt.strip():
            raise SettingsError("the prompt is empty; describe what to render")
        if not self.seeds:
            raise SettingsError("no seeds given; give at least one, e.g. --seeds 1")
        if len(self.seeds) > MAX_IMAGES:
            raise SettingsError(
                f"{len(self.seeds)} seeds; one render takes at most {MAX_IMAGES} (use fewer)"
            )
        for seed in self.seeds:
            _check_int("seed", seed, 0, 2**63 - 1)
        _check_int("steps", self.steps, 1, 500)
        if self.guidance is not None and not (
            math.isfinite(self.guidance) and 0 <= self.guidance <= 50
        ):
            raise SettingsError(f"guidance {self.guidance} must be in 0..50; 5 to 7.5 is usual")
        if self.sampler not in SAMPLERS:
            raise SettingsError(
                f"sampler {self.sampler!r} is unknown; use one of {', '.join(SAMPLERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise SettingsError(
                f"schedule {self.schedule!r} is unknown; use one of {', '.join(SCHEDULES)}"
            )
        for side, value in (("width", self.width), ("height", self.height)):
            if value is not None:
                _check_int(side, value, multiple_of, MAX_SIDE)
                if value % multiple_of:
                    raise SettingsError(f"{side} {value} must be a multiple of {multiple_of}")
        for applied in self.attributes:
            applied.validate()


def effective_schedule(sampler: str, schedule: str) -> str:
    """`schedule`, or "model" for DDIM (which has no choice of schedule)."""
    return "model" if sampler == "ddim" else schedule


def _check_int(what: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SettingsError(f"{what} {value!r} must be a whole number in {low}..{high}")


_WHOLE = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_whole(text: str, what: str = "value") -> int:
    """A whole number written with ASCII digits (`int()` would also read '١٢' as 12)."""
    if not _WHOLE.fullmatch(text.strip()):
        raise SettingsError(f"{what} {text!r} is not a whole number (digits 0-9)")
    return int(text)


def parse_number(text: str, what: str = "value") -> float:
    """A finite decimal number written with ASCII digits (no 'nan', 'inf' or other scripts)."""
    if not _NUMBER.fullmatch(text.strip()):
        raise SettingsError(f"{what} {text!r} is not a number like 0.5 or 1e-4")
    value = float(text)
    if not math.isfinite(value):
        raise SettingsError(f"{what} {text!r} is too large")
    return value


def parse_size(text: str) -> tuple[int, int]:
    """'512x768' → (512, 768)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*[xX×]\s*([0-9]+)\s*", text)
    if not match:
        raise SettingsError(f"size {text!r} must look like 512x512")
    return int(match.group(1)), int(match.group(2))


def parse_seeds(text: str) -> list[int]:
    """'1,2,5-7' → [1, 2, 5, 6, 7]; at most MAX_IMAGES seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if re.fullmatch(r"[0-9]+-[0-9]+", part):
            low, high = (int(p) for p in part.split("-"))
            if high < low or high - low > 10_000:
                raise SettingsError(f"seed range {part!r} is backwards or too long")
            seeds.extend(range(low, high + 1))
        elif re.fullmatch(r"[0-9]+", part):
            seeds.append(int(part))
        else:
            raise SettingsError(f"seed {part!r} is not a whole number; use e.g. --seeds 1,2,3")
        if len(seeds) > MAX_IMAGES:  # checked as it grows: a long list is never built
            raise SettingsError(f"more than {MAX_IMAGES} seeds; give fewer")
    if not seeds:
        raise SettingsError("no seeds given; use e.g. --seeds 1,2,3")
    return seeds


@dataclass(frozen=True)
class ModelChoice:
    """Which base model to use and where: 'demo' or a path; device and precision names."""

    source: str = "demo"
    device: str = "auto"
    precision: str = "auto"


@dataclass
class TuneJob:
    """Tune one attribute from `image` and save it to `out`."""

    image: Path
    settings: TuningSettings
    out: Path
    name: str = ""
    model: ModelChoice = field(default_factory=ModelChoice)
    checkpoint: Path | None = None  # resumable state; survives crashes, gone on success/cancel
    checkpoint_interval_s: float = 10.0

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value (settings included)."""
        self.settings.validate()
        if self.name:
            check_attribute_name(self.name)
        check_checkpoint_interval(self.checkpoint_interval_s)


def check_checkpoint_interval(interval: object) -> None:
    """Refuse (SettingsError) a checkpoint interval that is no number of seconds in range."""
    if (
        not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or not 0 <= interval <= MAX_CHECKPOINT_INTERVAL_S
    ):
        raise SettingsError(
            f"checkpoint interval {interval!r} must be a number of seconds in "
            f"0..{MAX_CHECKPOINT_INTERVAL_S:g}; 10 is usual"
        )


@dataclass
class RenderJob:
    """Render `settings` into `out_dir` (None: keep the images in memory only)."""

    settings: RenderSettings
    out_dir: Path | None = None
    model: ModelChoice = field(default_factory=ModelChoice)
