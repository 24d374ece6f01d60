"""Where a screen exists, the refusal to start on a PySide6 that would crash this Python is
shown in a dialog too (and always on stderr)."""

from __future__ import annotations

import pytest

from ostaf_desktop import pyside_check
from ostaf_desktop.pyside_check import FIX_COMMAND, QtRuntime, refusal, show_refusal
from tests.desktop.conftest import Dialogs


def test_the_refusal_is_a_dialog_when_a_screen_exists(
    qapp: object,
    dialogs: Dialogs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = refusal(QtRuntime("3.11.7", "6.12.0", immortal_none=False))
    assert message is not None
    monkeypatch.setattr(pyside_check, "can_show_dialog", lambda: True)
    show_refusal(message)
    assert dialogs.asked == ["OSTAF cannot start"]
    assert FIX_COMMAND in capsys.readouterr().err


def test_no_dialog_without_a_screen(
    qapp: object,
    dialogs: Dialogs,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(pyside_check, "can_show_dialog", lambda: False)
    show_refusal("OSTAF cannot run with PySide6 6.12.0 on Python 3.11.7: …")
    assert dialogs.asked == []
    assert "PySide6 6.12.0" in capsys.readouterr().err
