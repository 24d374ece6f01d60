"""Errors reach the banner: a one-line message, details, a copy button, and uncaught
exceptions from any thread."""

from __future__ import annotations

import sys
import threading

from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from ostaf.errors import StorageError
from ostaf_desktop.crash_handling import ErrorRelay, install_exception_hooks
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend


def test_a_failed_job_shows_the_banner(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    banner = window.banner
    assert banner.isHidden()
    fake.fail_render = StorageError("disk full while writing out.png: free some space")
    vm.rendering.render()
    qtbot.waitUntil(lambda: not banner.isHidden(), timeout=5000)
    assert banner.message.text() == "disk full while writing out.png: free some space"
    assert banner.details.isHidden()
    banner.details_button.click()
    assert not banner.details.isHidden()
    assert (
        "Traceback" in banner.details.toPlainText()
        and "StorageError" in banner.details.toPlainText()
    )
    banner.copy_button.click()
    clipboard = QGuiApplication.clipboard()
    assert clipboard is not None and clipboard.text().startswith("disk full")
    assert "Log file:" in clipboard.text()
    banner.close_button.click()
    assert banner.isHidden() and vm.session.error is None
    assert not vm.rendering.rendering and window.render_panel.render_button.isEnabled()


def test_uncaught_exceptions_from_any_thread_reach_the_banner(
    window: MainWindow, vm: MainViewModel, qtbot: QtBot, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    relay = ErrorRelay()
    relay.reported.connect(vm.session.report)
    install_exception_hooks(relay)
    try:
        raise ValueError("a bug in a slot")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    assert vm.session.error is not None
    assert vm.session.error.message == "Unexpected error (ValueError: a bug in a slot)"

    def crash() -> None:
        raise RuntimeError("a bug in a thread")

    thread = threading.Thread(target=crash)
    thread.start()
    thread.join()
    qtbot.waitUntil(
        lambda: vm.session.error is not None and "a bug in a thread" in vm.session.error.message,
        timeout=5000,
    )
    assert not window.banner.isHidden()
