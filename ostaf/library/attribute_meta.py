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
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ostaf.errors import AttributeFileError
from ostaf.method.regions import AttributeKind, Region

FORMAT_VERSION = 1
METADATA_KEY = "ostaf"
SUFFIX = ".safetensors"


def now_iso() -> str:
    """Creation time in UTC; SOURCE_DATE_EPOCH pins it for reproducible files."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch else time.time()
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class BaseModelInfo:
    """Which base model an attribute was tuned on."""

    name: str
    architecture: str  # hash of the target layers' names and shapes: must match to apply
    fingerprint: str  # hash of the U-Net weights: a mismatch only warns


@dataclass
class ReferenceInfo:
    sha256: str
    width: int
    height: int
    thumbnail: str = ""  # data:image/png;base64,...
    file_name: str = ""


@dataclass
class AttributeMeta:
    """The self-describing part of an attribute file."""

    name: str
    kind: AttributeKind
    region: Region
    targets: list[str]
    rank: int
    base_model: BaseModelInfo
    reference: ReferenceInfo
    tuning: dict[str, Any] = field(default_factory=dict)
    default_lambda: float = 1.0
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    created_at: str = field(default_factory=now_iso)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["region"] = self.region.to_dict()
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, source: Path | str = "attribute") -> AttributeMeta:
        """Parse and validate; raise AttributeFileError naming `source` on any problem."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("metadata is not a JSON object")
            version = int(data.get("format_version", 0))
            if version < 1 or version > FORMAT_VERSION:
                raise AttributeFileError(
                    f"{source}: attribute format version {version} is not supported by this "
                    f"version of OSTAF (supports 1..{FORMAT_VERSION}); update the app"
                )
            known = {f.name for f in fields(cls)}
            data = {k: v for k, v in data.items() if k in known}
            data["kind"] = AttributeKind(data["kind"])
            data["region"] = Region.from_dict(data["region"])
            data["base_model"] = BaseModelInfo(**data["base_model"])
            data["reference"] = ReferenceInfo(**data["reference"])
            meta = cls(**data)
            meta.validate()
            return meta
        except AttributeFileError:
            raise
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise AttributeFileError(
                f"{source}: the attribute metadata is damaged ({exc}); re-export it or tune again"
            ) from exc

    def validate(self) -> None:
        if not isinstance(self.targets, list) or not all(isinstance(t, str) for t in self.targets):
            raise ValueError("targets must be a list of module paths")
        if not self.targets:
            raise ValueError("no target layers")
        if not isinstance(self.rank, int) or not 1 <= self.rank <= 1024:
            raise ValueError(f"rank {self.rank!r} out of range")
        lam = self.default_lambda
        if not isinstance(lam, int | float) or not math.isfinite(lam) or not 0 <= lam <= 2:
            raise ValueError(f"default intensity {lam!r} is outside 0..2")
        if not isinstance(self.tags, list) or not all(isinstance(t, str) for t in self.tags):
            raise ValueError("tags must be a list of strings")
        for target in self.targets:
            if not self.region.matches(target):
                raise ValueError(f"target {target} lies outside the attribute's region")


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
