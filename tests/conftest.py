"""Shared test setup: a private OSTAF_HOME for the session and no network, ever."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ostaf_desktop.collection import COLLECTION

_HOME = Path(tempfile.mkdtemp(prefix="ostaf-test-home-"))
os.environ["OSTAF_HOME"] = str(_HOME)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["SOURCE_DATE_EPOCH"] = "1767225600"  # 2026-01-01: reproducible attribute files


_CONNECT = socket.socket.connect


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise OSError("tests must not open network connections")


def _local_only(sock: socket.socket, address: object) -> None:
    # Unix-domain sockets never leave the machine: multiprocessing talks to its forkserver
    # through one (tests/cli_process.py).
    if sock.family != getattr(socket, "AF_UNIX", None):
        _refuse()
    _CONNECT(sock, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _local_only)
    monkeypatch.setattr(socket, "create_connection", _refuse)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh OSTAF_HOME for tests that look at settings or projects (the demo model cache
    stays shared through a symlink so it is built once)."""
    folder = tmp_path / "home"
    folder.mkdir()
    (_HOME / "cache").mkdir(parents=True, exist_ok=True)
    (folder / "cache").symlink_to(_HOME / "cache", target_is_directory=True)
    monkeypatch.setenv("OSTAF_HOME", str(folder))
    return folder


# Python's cyclic collector runs on this (the main) thread only, between tests, as the app runs
# it on its GUI thread between events (ostaf_desktop/collection.py): a collection that started
# on a worker thread while a desktop test ran deleted a Qt object there and killed the suite.
COLLECTION.install()


@pytest.fixture(autouse=True)
def collect_between_tests() -> Iterator[None]:
    yield
    COLLECTION.collect_due()
