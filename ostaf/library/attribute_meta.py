"""What an attribute file says about itself, readable without torch (for the library views).

An attribute file is a `.safetensors` file whose header carries one metadata key, `ostaf`,
holding canonical JSON (sorted keys). One key keeps the bytes deterministic: safetensors
writes several metadata keys in a random order.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from ostaf.errors import AttributeFileError, ProjectError, SettingsError
from ostaf.method.regions import AttributeKind, Region
from ostaf.method.shift_keys import split_shift_key
from ostaf.records import RecordError, parse_record, scalar_extras

FORMAT_VERSION = 2  # the newest this version reads
# Version 2 adds the placeholder's embedding shifts; a file without them is still written
# as version 1, which every earlier version of the app reads.
SHIFTS_VERSION = 2
METADATA_KEY = "ostaf"
SUFFIX = ".safetensors"
MAX_NAME = 120  # one limit for attribute names, wherever a name is given or made
MAX_TAG = 40
MAX_SIDE = 1 << 24
Finite = Annotated[float, Field(allow_inf_nan=False)]


def now_iso() -> str:
    """Creation time in UTC; SOURCE_DATE_EPOCH pins it for reproducible files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch else time.time()
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_attribute_name(name: str) -> str:
    """A name as it is stored: spaces collapsed, not empty, at most MAX_NAME characters."""
    name = " ".join(name.split())
    if not name:
        raise SettingsError("an attribute name cannot be empty")
    if len(name) > MAX_NAME:
        raise SettingsError(f"that name has {len(name)} characters; keep it to {MAX_NAME} at most")
    return name


def clip_name(text: str) -> str:
    """`text` as a name of at most MAX_NAME characters (cut with '…' when longer)."""
    name = " ".join(text.split())
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def default_attribute_name(kind: AttributeKind, file_name: str) -> str:
    """The name of an attribute nobody named: its kind and reference, within MAX_NAME."""
    return clip_name(f"{kind} from {file_name}")


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, lower-cased, without duplicates; refuse empty, long or comma'd ones."""
    result: list[str] = []
    for tag in tags:
        tag = " ".join(tag.split()).lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG or "," in tag:
            raise ProjectError(f"tag {tag!r} must be under {MAX_TAG} characters, without commas")
        if tag not in result:
            result.append(tag)
    return result


@dataclass
class BaseModelInfo:
    """Which base model an attribute was tuned on."""

    name: str
    architecture: str  # hash of the target layers' names and shapes: must match to apply
    fingerprint: str  # hash of the U-Net weights: a mismatch only warns


@dataclass
class ReferenceInfo:
    sha256: str
    width: Annotated[int, Field(ge=1, le=MAX_SIDE)]
    height: Annotated[int, Field(ge=1, le=MAX_SIDE)]
    thumbnail: str = ""  # data:image/png;base64,...
    file_name: str = ""


@with_config(ConfigDict(extra="allow"))
class TuningRecord(TypedDict, total=False):
    """How an attribute was tuned, as stored in its file (every key optional: older files
    hold fewer). Unknown keys of plain values are kept, so a newer file survives an edit."""

    steps: Annotated[int, Field(ge=0)]
    learning_rate: Finite
    seed: Annotated[int, Field(ge=0)]
    timesteps_per_step: Annotated[int, Field(ge=1)]
    timesteps_per_pass: Annotated[int, Field(ge=0)]
    memory_saving: bool
    prompt: str
    token: str
    class_word: str
    caption: str  # the reference's description tuned on ("" or absent: the template prompt)
    timestep_low: Annotated[float, Field(ge=0, le=1)]  # share of the timesteps sampled
    timestep_high: Annotated[float, Field(ge=0, le=1)]
    resolution: Annotated[int, Field(ge=8, le=MAX_SIDE)]
    family: str  # "sd1", "sd2", "sdxl" (recorded since SDXL support)
    prediction_type: str
    crop: Annotated[list[int], Field(min_length=4, max_length=4)] | None
    masked: bool
    flip: bool
    rotate: bool  # quarter turns of the reference (absent: none)
    final_loss: Finite
    device: str
    prior: Annotated[float, Field(ge=0)]  # prior-preservation weight (0 or absent: none)
    strength: Annotated[float, Field(gt=0)]  # the stored offsets' multiple of the tuned ones
    embedding_rate: Annotated[float, Field(ge=0)]  # the placeholder's (0 or absent: not learned)


_TUNING_KEYS = frozenset(TuningRecord.__annotations__)


def _tuning_extras(values: TuningRecord) -> TuningRecord:
    scalar_extras(dict(values), _TUNING_KEYS)
    return values


@dataclass
class AttributeMeta:
    """The self-describing part of an attribute file. Its annotations are the schema every
    file is checked against when read (ostaf.records)."""

    name: str
    kind: AttributeKind
    region: Region
    targets: Annotated[list[str], Field(min_length=1)]
    rank: Annotated[int, Field(ge=1, le=1024)]
    base_model: BaseModelInfo
    reference: ReferenceInfo
    tuning: Annotated[TuningRecord, AfterValidator(_tuning_extras)] = field(
        default_factory=lambda: TuningRecord()
    )
    default_lambda: Annotated[float, Field(allow_inf_nan=False, ge=0, le=2)] = 1.0
    # The placeholder's learned embedding shifts held in the file, "<encoder>.<token id>"
    # (ostaf.method.placeholder); empty in files tuned without them.
    shifts: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    created_at: str = field(default_factory=now_iso)
    format_version: int = 1

    def to_json(self) -> str:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["region"] = self.region.to_dict()
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, source: Path | str = "attribute") -> AttributeMeta:
        """Parse and validate; raise AttributeFileError naming `source` on any problem."""
        try:
            version = parse_record(_Versioned, text).get("format_version", 0)
            if version < 1 or version > FORMAT_VERSION:
                raise AttributeFileError(
                    f"{source}: attribute format version {version} is not supported by this "
                    f"version of OSTAF (supports 1..{FORMAT_VERSION}); update the app"
                )
            meta = parse_record(cls, text)
            meta.validate()
            return meta
        except (RecordError, ValueError) as exc:
            raise AttributeFileError(
                f"{source}: the attribute metadata is damaged ({exc}); re-export it or tune again"
            ) from exc

    def validate(self) -> None:
        """Raise ValueError for what the schema cannot say alone (or a value set in code
        that the schema would refuse when the file is read back)."""
        lam = self.default_lambda
        if not isinstance(lam, int | float) or not math.isfinite(lam) or not 0 <= lam <= 2:
            raise ValueError(f"default intensity {lam!r} is outside 0..2")
        if not isinstance(self.rank, int) or not 1 <= self.rank <= 1024:
            raise ValueError(f"rank {self.rank!r} out of range")
        parse_record(AttributeMeta, self.to_json())  # what is written must read back
        for target in self.targets:
            if not self.region.matches(target):
                raise ValueError(f"target {target} lies outside the attribute's region")
        for key in self.shifts:
            split_shift_key(key)
        if self.shifts and self.format_version < SHIFTS_VERSION:
            raise ValueError(
                f"placeholder embeddings need format version {SHIFTS_VERSION}, "
                f"not {self.format_version}"
            )


@with_config(ConfigDict(extra="ignore"))
class _Versioned(TypedDict, total=False):
    format_version: int


def read_meta(path: Path | str) -> AttributeMeta:
    """Read only the header of an attribute file (fast, no torch)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise AttributeFileError(f"{path}: no such attribute file; check the path")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AttributeFileError(
            f"{path}: not a readable .safetensors file ({exc}); it may be truncated or corrupt"
        ) from exc
    if METADATA_KEY not in header:
        raise AttributeFileError(
            f"{path}: this .safetensors file is not an OSTAF attribute (a LoRA or a model?); "
            "import LoRAs in the tool they were made for"
        )
    return AttributeMeta.from_json(header[METADATA_KEY], source=path)
