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
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from ostaf.errors import AttributeFileError, InputImageError, ProjectError, SettingsError
from ostaf.images import check_thumbnail_url
from ostaf.limits import (
    MAX_CAPTION,
    MAX_CLASS_WORD,
    MAX_FILE_NAME,
    MAX_NAME,
    MAX_NOTES,
    MAX_REFERENCE_SIDE,
    MAX_SIDE,
    MAX_TAG,
    MAX_TAGS,
    TOKEN,
    UNSAFE_CHARACTERS,
    check_crop,
    check_label,
)
from ostaf.method.regions import AttributeKind, Region
from ostaf.method.shift_keys import split_shift_key
from ostaf.records import RecordError, Sha256, parse_record, scalar_extras

FORMAT_VERSION = 2  # the newest this version reads
# Version 2 adds the placeholder's embedding shifts; a file without them is still written
# as version 1, which every earlier version of the app reads.
SHIFTS_VERSION = 2
METADATA_KEY = "ostaf"
SUFFIX = ".safetensors"
Finite = Annotated[float, Field(allow_inf_nan=False)]
Together = Literal["one pass", "three passes"]  # how attributes learnt together were learnt


def now_iso() -> str:
    """Creation time in UTC; SOURCE_DATE_EPOCH pins it for reproducible files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch else time.time()
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_attribute_name(name: str) -> str:
    """A name as it is stored: spaces collapsed, not empty, at most MAX_NAME characters, no
    control or invisible characters."""
    try:
        return check_label(" ".join(name.split()), "an attribute name", MAX_NAME)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def clip_name(text: str) -> str:
    """`text` as a name of at most MAX_NAME characters (cut with '…' when longer), its
    control and invisible characters (a file name may hold them) turned into spaces."""
    name = " ".join(UNSAFE_CHARACTERS.sub(" ", text).split())
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def default_attribute_name(kind: AttributeKind, file_name: str) -> str:
    """The name of an attribute nobody named: its kind and reference, within MAX_NAME."""
    return clip_name(f"{kind} from {file_name}")


def normal_tag(tag: str) -> str:
    """A tag as it is stored (spaces collapsed, lower case); ValueError when it is longer than
    MAX_TAG characters, holds a comma or a control character."""
    tag = " ".join(tag.split()).lower()
    if len(tag) > MAX_TAG or "," in tag or UNSAFE_CHARACTERS.search(tag):
        raise ValueError(
            f"tag {tag[: MAX_TAG + 10]!r} must be at most {MAX_TAG} visible characters, "
            "without commas"
        )
    return tag


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, lower-cased, without duplicates; refuse long, comma'd ones or more than
    MAX_TAGS of them."""
    result: list[str] = []
    for tag in tags:
        try:
            tag = normal_tag(tag)
        except ValueError as exc:
            raise ProjectError(str(exc)) from exc
        if tag and tag not in result:
            if len(result) == MAX_TAGS:
                raise ProjectError(f"an attribute takes at most {MAX_TAGS} tags")
            result.append(tag)
    return result


# --- the schema's checks: the same rules as the writers' above ------------------------------


def _stored_name(name: str) -> str:
    check_label(name, "the name", MAX_NAME)
    if name != " ".join(name.split()):
        raise ValueError("the name has leading, trailing or repeated spaces")
    return name


def _stored_tags(tags: list[str]) -> list[str]:
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags; an attribute takes at most {MAX_TAGS}")
    for tag in tags:
        if not tag or normal_tag(tag) != tag:
            raise ValueError(f"tag {tag[: MAX_TAG + 10]!r} is not a tag as stored (lower case)")
    if len(set(tags)) != len(tags):
        raise ValueError("a tag is listed twice")
    return tags


def _thumbnail(url: str) -> str:
    if url:
        try:
            check_thumbnail_url(url)
        except InputImageError as exc:
            raise ValueError(str(exc)) from exc
    return url


def _crop(box: list[int] | None) -> list[int] | None:
    if box is not None:
        check_crop(box)
    return box


def _token(token: str) -> str:
    if not TOKEN.fullmatch(token):
        raise ValueError(f"placeholder token {token[:40]!r} is not one word of letters/digits")
    return token


def _family(family_id: str) -> str:
    from ostaf.models.families import FAMILIES

    known = [family.id for family in FAMILIES]
    if family_id not in known:
        raise ValueError(f"{family_id[:40]!r} is not a model family ({', '.join(known)})")
    return family_id


@dataclass
class BaseModelInfo:
    """Which base model an attribute was tuned on."""

    name: str
    architecture: str  # hash of the target layers' names and shapes: must match to apply
    fingerprint: str  # hash of the U-Net weights: a mismatch only warns


@dataclass
class ReferenceInfo:
    sha256: Sha256
    width: Annotated[int, Field(ge=1, le=MAX_REFERENCE_SIDE)]
    height: Annotated[int, Field(ge=1, le=MAX_REFERENCE_SIDE)]
    # data:image/png;base64,... (its declared pixels checked, nothing decoded)
    thumbnail: Annotated[str, AfterValidator(_thumbnail)] = ""
    file_name: Annotated[str, Field(max_length=MAX_FILE_NAME)] = ""


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
    token: Annotated[str, AfterValidator(_token)]
    class_word: Annotated[str, Field(max_length=MAX_CLASS_WORD)]
    # The reference's description tuned on ("" or absent: the template prompt).
    caption: Annotated[str, Field(max_length=MAX_CAPTION)]
    timestep_low: Annotated[float, Field(ge=0, le=1)]  # share of the timesteps sampled
    timestep_high: Annotated[float, Field(ge=0, le=1)]
    resolution: Annotated[int, Field(ge=8, le=MAX_SIDE)]
    family: Annotated[str, AfterValidator(_family)]  # "sd1", "sd2", "sdxl" (since SDXL)
    prediction_type: str
    crop: Annotated[list[int] | None, AfterValidator(_crop)]
    masked: bool
    flip: bool
    rotate: bool  # quarter turns of the reference (absent: none)
    final_loss: Finite
    device: str
    prior: Annotated[float, Field(ge=0)]  # prior-preservation weight (0 or absent: none)
    strength: Annotated[float, Field(gt=0)]  # the stored offsets' multiple of the tuned ones
    embedding_rate: Annotated[float, Field(ge=0)]  # the placeholder's (0 or absent: not learned)
    # Learnt together with others from one reference ("Learn all three"): their ids (the
    # first 16 hex digits of their content hashes, as the library names them), comma-separated
    # (one text: a file stays readable by versions that keep only plain extra values), and how.
    learned_with: Annotated[str, Field(pattern=r"^(?:[0-9a-f]{16}(?:,[0-9a-f]{16}){0,7})?$")]
    together: Together


_TUNING_KEYS = frozenset(TuningRecord.__annotations__)


def _tuning_extras(values: TuningRecord) -> TuningRecord:
    scalar_extras(dict(values), _TUNING_KEYS)
    return values


@dataclass
class AttributeMeta:
    """The self-describing part of an attribute file. Its annotations are the schema every
    file is checked against when read (ostaf.records)."""

    name: Annotated[str, AfterValidator(_stored_name)]
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
    tags: Annotated[list[str], AfterValidator(_stored_tags)] = field(default_factory=list)
    notes: Annotated[str, Field(max_length=MAX_NOTES)] = ""
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
