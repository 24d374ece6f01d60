"""How each tuning run went (loss curve, preview thumbnails), kept in the cache folder so that
selecting an attribute shows its run again. Rebuildable data: losing it loses only the plots."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ostaf import paths
from ostaf.errors import StorageError
from ostaf.file_reading import MiB, read_regular_file
from ostaf.images import thumbnail_data_url
from ostaf.library.atomic import atomic_write_text
from ostaf.records import RecordError, parse_record

log = logging.getLogger(__name__)
MAX_POINTS = 400
PREVIEW_SIDE = 128
MAX_FILE = 16 * MiB  # a curve and a few dozen small previews take well under 1 MB


@dataclass
class RunRecord:
    losses: list[float] = field(default_factory=list)
    previews: list[str] = field(default_factory=list)  # data:image/png;base64,…
    preview_steps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    preview_prompt: str = ""  # what the previews rendered


def downsample(values: list[float], limit: int = MAX_POINTS) -> list[float]:
    """At most `limit` points: the mean of equal chunks (keeps the curve's shape)."""
    if len(values) <= limit:
        return list(values)
    chunk = len(values) / limit
    return [
        sum(part) / len(part)
        for i in range(limit)
        if (part := values[int(i * chunk) : max(int((i + 1) * chunk), int(i * chunk) + 1)])
    ]


def _file(attribute_id: str) -> Path:
    return paths.cache_dir() / "runs" / f"{attribute_id}.json"


def save_run(
    attribute_id: str,
    losses: list[float],
    previews: list[tuple[int, Any]],
    seconds: float,
    preview_prompt: str = "",
) -> None:
    """Keep a finished run's curve and previews (PIL images) for the attribute's id."""
    record = RunRecord(
        losses=[round(v, 6) for v in downsample(losses)],
        previews=[thumbnail_data_url(img, PREVIEW_SIDE) for _, img in previews],
        preview_steps=[step for step, _ in previews],
        seconds=round(seconds, 2),
        preview_prompt=preview_prompt,
    )
    try:
        atomic_write_text(_file(attribute_id), json.dumps(asdict(record)) + "\n")
    except StorageError as exc:
        log.warning("could not keep the run history: %s", exc)


def load_run(attribute_id: str) -> RunRecord | None:
    """The kept run of an attribute; None when there is none or it cannot be read (logged)."""
    path = _file(attribute_id)
    try:
        return parse_record(RunRecord, read_regular_file(path, MAX_FILE))
    except FileNotFoundError:
        return None
    except (OSError, RecordError) as exc:
        log.warning("ignoring the damaged run history %s: %s", path, exc)
        return None
