"""The SHA-256 of a model file, as A1111/Forge and Civitai identify checkpoints.

A1111's infotext `Model hash` is the first 10 hex digits of the file's SHA-256 (Civitai calls
it "AutoV2"); pasting an image's parameters makes A1111 look the model up by it. Hashing 6 GB
takes a while, so a hash is computed once per file and kept in the user data folder, keyed by
the file's path, size and modification time (as A1111 keeps its own). Two processes hashing at
once may each write the cache; the later write wins and the other entry is hashed again later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from ostaf import paths
from ostaf.library.atomic import atomic_write_text
from ostaf.progress import CancelToken, Progress, ProgressCallback, ignore_progress

log = logging.getLogger(__name__)

CACHE_NAME = "model-hashes.json"
CACHE_VERSION = 1
MAX_ENTRIES = 500
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


def _read_cache() -> dict[str, dict[str, Any]]:
    """Valid entries of the cache file; a missing or damaged one is an empty cache."""
    path = cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s is unreadable (%s); model hashes are computed again", path, exc)
        return {}
    found = data.get("files") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {
        key: entry
        for key, entry in found.items()
        if isinstance(entry, dict)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("mtime_ns"), int)
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
    }


def _write_cache(entries: dict[str, dict[str, Any]]) -> None:
    path = cache_path()
    try:
        os.makedirs(path.parent, exist_ok=True)
        atomic_write_text(path, json.dumps({"version": CACHE_VERSION, "files": entries}))
    except OSError as exc:  # a cache that cannot be written only costs a hash next time
        log.warning("cannot write %s (%s); the model hash is computed again next time", path, exc)
