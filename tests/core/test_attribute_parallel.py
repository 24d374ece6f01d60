"""`bench/attribute_parallel.py`: the benchmark in several processes, stopped at a deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.attribute_parallel import main


def test_a_shared_cache_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--parts", "2", "--", "--references", "1"])
    assert stopped.value.code == 2
    assert "--cache" in capsys.readouterr().err


def test_the_deadline_stops_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    bench = ["--references", "1", "--prompts", "1", "--seeds", "1", "--cache", str(tmp_path)]
    code = main(["--parts", "2", "--deadline", "1", "--", *bench])
    assert code == 1  # stopped, not finished and not failed
    assert time.monotonic() - started < 60
    said = capsys.readouterr().err
    assert "2 parts in" in said and "stopped at the deadline" in said
