"""The SHA-256 of a model file, as A1111/Forge and Civitai identify checkpoints.

A1111's infotext `Model hash` is the first 10 hex digits of the file's SHA-256 (Civitai calls
it "AutoV2"); pasting an image's parameters makes A1111 look the model up by it. Hashing 6 GB
takes a while, so a hash is computed once per file and kept in the user data folder, keyed by
the file's path, size and modification time (as A1111 keeps its own). Two processes hashing at
once may each write the cache; the later write wins and the other entry is hashed again later.
The cache is read like every file of the data folder: a capped regular file, typed by its
schema (a hash is 64 lowercase hex digits); anything else is an empty cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from ostaf import paths
from ostaf.file_reading import MiB, read_regular_file
from ostaf.library.atomic import atomic_write_text
from ostaf.progress import CancelToken, Progress, ProgressCallback, ignore_progress
from ostaf.records import RecordError, Sha256, parse_record

log = logging.getLogger(__name__)

CACHE_NAME = "model-hashes.json"
CACHE_VERSION = 1
MAX_ENTRIES = 500
MAX_FILE = 4 * MiB  # 500 entries take about 100 kB
BLOCK = 8 * 1024 * 1024
SHORT = 10  # A1111's "shorthash", Civitai's AutoV2


def cache_path() -> Path:
    return paths.data_dir() / CACHE_NAME


def file_sha256(
    path: Path,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    stage: str = "loading",
) -> str:
    """The hex SHA-256 of `path`, from the cache when its size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    key, stamp = str(path), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    entries = _read_cache()
    cached = entries.get(key)
    if cached is not None and {k: cached.get(k) for k in stamp} == stamp:
        return str(cached["sha256"])
    digest = _hash(path, stat.st_size, progress, cancel or CancelToken(), stage)
    entries.pop(key, None)
    entries[key] = {**stamp, "sha256": digest}  # newest last: the oldest go first
    _write_cache(dict(list(entries.items())[-MAX_ENTRIES:]))
    return digest


def _hash(
    path: Path, size: int, progress: ProgressCallback, cancel: CancelToken, stage: str
) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    done = 0
    total_gb = size / 1e9
    with path.open("rb") as handle:
        while count := handle.readinto(buffer):
            cancel.check()
            digest.update(view[:count])
            done += count
            progress(
                Progress(
                    stage,
                    1,
                    3,  # the step of load_base_model that reads the file
                    message=f"Hashing {path.name} for A1111/Civitai (once per file): "
                    f"{done / 1e9:.1f} of {total_gb:.1f} GB",
                )
            )
    return digest.hexdigest()


class HashEntry(TypedDict):
    """One model file's hash, valid while the file keeps its size and modification time."""

    size: Annotated[int, Field(ge=0)]
    mtime_ns: int
    sha256: Sha256


@with_config(ConfigDict(extra="ignore"))
class HashCache(TypedDict):
    """The content of model-hashes.json."""

    version: int
    files: dict[str, HashEntry]


def _read_cache() -> dict[str, dict[str, Any]]:
    """The entries of the cache file; a missing or damaged one is an empty cache (logged)."""
    path = cache_path()
    try:
        cache = parse_record(HashCache, read_regular_file(path, MAX_FILE))
    except FileNotFoundError:
        return {}
    except (OSError, RecordError) as exc:
        log.warning("%s is unreadable (%s); model hashes are computed again", path, exc)
        return {}
    return {key: dict(entry) for key, entry in cache["files"].items()}


def _write_cache(entries: dict[str, dict[str, Any]]) -> None:
    path = cache_path()
    try:
        os.makedirs(path.parent, exist_ok=True)
        atomic_write_text(path, json.dumps({"version": CACHE_VERSION, "files": entries}))
    except OSError as exc:  # a cache that cannot be written only costs a hash next time
        log.warning("cannot write %s (%s); the model hash is computed again next time", path, exc)
