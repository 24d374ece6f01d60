"""The installation self-test passes here, names the stage that fails, and leaves the user's
folders alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ostaf.selftest import run_self_test


def test_self_test_passes_and_writes_nothing_of_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_home = tmp_path / "user-home"
    monkeypatch.setenv("OSTAF_HOME", str(user_home))
    report = run_self_test(steps=2)
    assert report.ok, report.summary
    assert report.summary.startswith("self-test passed in")
    assert any(c.startswith("tuned 2 steps") for c in report.checks)
    assert not user_home.exists()  # no settings, projects or cache of the user's were touched
    assert os.environ["OSTAF_HOME"] == str(user_home)


def test_self_test_names_missing_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ostaf.paths

    monkeypatch.setattr(ostaf.paths, "RESOURCES", tmp_path / "resources")
    report = run_self_test(steps=1)
    assert not report.ok
    assert report.summary.startswith("self-test FAILED while reading the shipped resources: ")
    assert str(tmp_path / "resources" / "icons" / "app.svg") in report.summary


def test_self_test_names_the_failing_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    import ostaf.service

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(ostaf.service.OstafService, "render", broken)
    report = run_self_test(steps=1)
    assert not report.ok
    assert report.summary == "self-test FAILED while rendering: renderer exploded"
