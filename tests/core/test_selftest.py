"""The installation self-test passes here and names the stage that fails."""

from __future__ import annotations

import pytest

from ostaf.selftest import run_self_test


def test_self_test_passes() -> None:
    report = run_self_test(steps=2)
    assert report.ok, report.summary
    assert report.summary.startswith("self-test passed in")
    assert any(c.startswith("tuned 2 steps") for c in report.checks)


def test_self_test_names_the_failing_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    import ostaf.service

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(ostaf.service.OstafService, "render", broken)
    report = run_self_test(steps=1)
    assert not report.ok
    assert report.summary == "self-test FAILED while rendering: renderer exploded"
