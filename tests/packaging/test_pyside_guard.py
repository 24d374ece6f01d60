"""A PySide6 release that would crash this Python is excluded by the install and refused at
start with a message naming the versions and the fix (versions injected, no such install
needed)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ostaf_desktop import launcher, pyside_check
from ostaf_desktop.pyside_check import (
    FIX_COMMAND,
    GOOD_PYSIDE,
    KNOWN_BAD_PYSIDE,
    QtRuntime,
    can_show_dialog,
    none_is_immortal,
    refusal,
)

ROOT = Path(__file__).resolve().parents[2]


def pyside_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = [
        Requirement(text)
        for text in project["project"]["dependencies"]
        if Requirement(text).name.lower() == "pyside6-essentials"
    ]
    assert len(found) == 1
    return found[0]


def test_the_install_excludes_every_known_bad_release_and_pins_the_tested_one() -> None:
    allowed = pyside_requirement().specifier
    assert all(not allowed.contains(bad) for bad in KNOWN_BAD_PYSIDE)
    assert allowed.contains(GOOD_PYSIDE)
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(rf"^PySide6-Essentials=={re.escape(GOOD_PYSIDE)}$", pins, re.MULTILINE)


def test_python_3_11_with_6_12_0_is_refused_with_versions_and_fix() -> None:
    message = refusal(QtRuntime(python="3.11.7", pyside="6.12.0", immortal_none=False))
    assert message is not None
    assert "PySide6 6.12.0" in message and "Python 3.11.7" in message
    assert FIX_COMMAND in message and "PySide6-Essentials==6.11.3" in message


def test_an_unknown_release_that_loses_references_is_refused_too() -> None:
    message = refusal(QtRuntime("3.11.7", "6.12.1", immortal_none=False, drift=-200))
    assert message is not None and "lost 200 references" in message and FIX_COMMAND in message


@pytest.mark.parametrize(
    "runtime",
    [
        QtRuntime("3.11.7", GOOD_PYSIDE, immortal_none=False),
        QtRuntime("3.12.1", "6.12.0", immortal_none=True),  # None is immortal: harmless
        QtRuntime("3.13.0", "6.12.0", immortal_none=True, drift=0),
    ],
)
def test_safe_combinations_start(runtime: QtRuntime) -> None:
    assert refusal(runtime) is None


def test_none_is_immortal_from_python_3_12() -> None:
    assert not none_is_immortal((3, 11, 7))
    assert none_is_immortal((3, 12, 1)) and none_is_immortal((3, 13, 0))


def test_a_dialog_only_where_a_screen_exists() -> None:
    assert not can_show_dialog({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, "linux")
    assert not can_show_dialog({}, "linux")
    assert can_show_dialog({"DISPLAY": ":1"}, "linux")
    assert can_show_dialog({}, "win32")


def test_the_launcher_refuses_before_any_window(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = QtRuntime("3.11.7", "6.12.0", immortal_none=False, drift=-200)
    monkeypatch.setattr(QtRuntime, "current", classmethod(lambda cls, probe=True: bad))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")  # stderr only, no dialog to block
    opened: list[object] = []
    monkeypatch.setattr("ostaf_desktop.app.run_app", lambda *args: opened.append(args) or 0)

    assert launcher.main([]) == launcher.CANNOT_START
    assert opened == []
    err = capsys.readouterr().err
    assert "PySide6 6.12.0" in err and "Python 3.11.7" in err and FIX_COMMAND in err


def test_the_current_install_passes_the_start_check() -> None:
    assert refusal(QtRuntime.current()) is None
    if not none_is_immortal():
        assert pyside_check.probe_drift() == 0
