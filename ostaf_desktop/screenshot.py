"""`--screenshot FILE.png`: wait until the window is idle (model loaded, no job queued or
running, no preview about to be requested), save a picture of it and quit."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from ostaf_desktop.viewmodels.main import MainViewModel

log = logging.getLogger(__name__)
POLL_MS = 100
SETTLE_POLLS = 5  # idle for this many polls in a row (lets queued signals and repaints land)


def save_screenshot(window: QWidget, path: Path) -> bool:
    """Render the window (with its frame-less contents) into a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return window.grab().save(str(path), "PNG")


class ScreenshotWhenIdle(QObject):
    """Polls the view-model; once idle, saves the screenshot and exits with 0 (1 on failure)."""

    def __init__(self, window: QWidget, vm: MainViewModel, path: Path, timeout_s: float) -> None:
        super().__init__(window)
        self._window, self._vm, self._path = window, vm, path
        self._deadline = time.monotonic() + timeout_s
        self._idle_polls = 0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        self._timer.start()

    def _poll(self) -> None:
        self._idle_polls = self._idle_polls + 1 if self._vm.idle else 0
        timed_out = time.monotonic() > self._deadline
        if self._idle_polls < SETTLE_POLLS and not timed_out:
            return
        self._timer.stop()
        if timed_out:
            log.warning("the window did not become idle in time; taking the screenshot anyway")
        saved = save_screenshot(self._window, self._path)
        print(f"screenshot: {self._path}" if saved else f"could not write {self._path}")
        self._window.close()
        app = QApplication.instance()
        if app is not None:
            app.exit(0 if saved and not timed_out else 1)
