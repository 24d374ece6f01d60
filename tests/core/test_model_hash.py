"""A1111's `Model hash`: the first 10 hex digits of the checkpoint file's SHA-256, computed
once per file (cached by path, size and mtime in the user data folder), with progress, in the
load job; our own U-Net fingerprint stays in our JSON record."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ostaf.errors import Cancelled
from ostaf.interop.pngmeta import parse_a1111
from ostaf.models import file_hash
from ostaf.models.base_model import BaseModel
from ostaf.models.file_hash import cache_path, file_sha256
from ostaf.progress import CancelToken, Progress
from ostaf.render.rendering import render
from ostaf.requests import RenderSettings
from tests.fifo import fifo_at, finishes, needs_fifo


@pytest.fixture
def weights(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(file_hash, "BLOCK", 1000)  # several progress reports for a small file
    path = tmp_path / "model.safetensors"
    path.write_bytes(os.urandom(4500))
    return path


def test_the_hash_is_the_files_sha256_with_progress(weights: Path) -> None:
    reports: list[Progress] = []
    digest = file_sha256(weights, reports.append)
    assert digest == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert len(reports) == 5 and all(r.stage == "loading" for r in reports)
    assert "Hashing model.safetensors" in reports[0].message
    assert reports[-1].message.endswith("0.0 of 0.0 GB")


def test_the_hash_is_cached_by_path_size_and_mtime(
    weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = file_sha256(weights)
    stored = json.loads(cache_path().read_text())["files"]
    assert stored[str(weights.resolve())]["sha256"] == first
    assert not [p for p in cache_path().parent.iterdir() if p.name != cache_path().name
                and p.name.startswith(cache_path().name)]  # fmt: skip

    reports: list[Progress] = []
    assert file_sha256(weights, reports.append) == first and reports == []  # not read again

    weights.write_bytes(os.urandom(4500))  # a new file (new mtime): hashed again
    assert file_sha256(weights) == hashlib.sha256(weights.read_bytes()).hexdigest() != first


def test_a_damaged_cache_is_rebuilt(weights: Path) -> None:
    cache_path().write_text('{"files": {"x": [1, 2]}, "version"')
    assert file_sha256(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert json.loads(cache_path().read_text())["version"] == 1


def test_cancel_stops_hashing_and_caches_nothing(weights: Path) -> None:
    token = CancelToken()

    def cancel_at_second_block(report: Progress) -> None:
        token.cancel()

    with pytest.raises(Cancelled):
        file_sha256(weights, cancel_at_second_block, token)
    assert not cache_path().exists()


def test_png_model_hash_is_the_files_short_sha256(model: BaseModel) -> None:
    model.file_sha256 = "0123456789abcdef" * 4  # as loaded from a single file
    try:
        done = render(model, RenderSettings("a red circle", seeds=[1], steps=1))[0]
    finally:
        model.file_sha256 = None
    values = parse_a1111(done.parameters)["values"]
    assert values["Model hash"] == "0123456789" and values["Model"] == model.name
    assert done.record["model"]["sha256"] == "0123456789abcdef" * 4
    assert done.record["model"]["fingerprint"] == model.fingerprint


@needs_fifo
def test_a_cache_that_never_ends_is_an_empty_cache(weights: Path) -> None:
    """A FIFO with no writer as model-hashes.json blocked every single-file model load."""
    with fifo_at(cache_path()):
        done, result = finishes(lambda: file_sha256(weights))
        assert done and result == [hashlib.sha256(weights.read_bytes()).hexdigest()]


@pytest.mark.parametrize(
    "forged",
    ["\x1b[2J, Seed: 1" + "z" * 51, "G" * 64, "A" * 64, "0" * 63 + "\u0663"],
)
def test_a_cached_hash_that_is_not_64_lowercase_hex_is_not_taken(
    weights: Path, forged: str
) -> None:
    """A poisoned entry matching the file's path, size and mtime was taken as its hash
    (and written into every PNG's `Model hash`)."""
    stat = weights.resolve().stat()
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": forged}
    cache_path().parent.mkdir(parents=True, exist_ok=True)
    cache_path().write_text(json.dumps({"version": 1, "files": {str(weights.resolve()): entry}}))
    assert file_sha256(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()
