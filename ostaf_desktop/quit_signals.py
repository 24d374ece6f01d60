"""SIGTERM, SIGINT and SIGHUP (a logout or shutdown, `kill`, Ctrl+C in the terminal, the
terminal closed) quit the app the way a confirmed close does: the layout and the project's
state are saved, a running tuning keeps its checkpoint (the next start offers to resume it), a
batch keeps its finished images, and the exit is clean, so the next start reports no crash.

Python runs a signal handler only when the interpreter gets control, which an idle Qt event
loop does not give it; so the signal also writes to a socket (`signal.set_wakeup_fd`) whose
notifier wakes the loop. A second signal while the app quits ends the process at once; the app
passes `on_second` what to leave for the next start (the cause, every thread's traceback)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

from PySide6.QtCore import QObject, QSocketNotifier, Qt, Signal

log = logging.getLogger("ostaf_desktop")

QUIT_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


class QuitOnSignals(QObject):
    """Turns the first quit signal into `requested` (queued to the GUI thread's loop)."""

    requested = Signal(str)  # the signal's name

    def __init__(
        self, on_second: Callable[[str], None] | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.received: str | None = None
        self._on_second = on_second
        self._wake_read, self._wake_write = socket.socketpair()
        for end in (self._wake_read, self._wake_write):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._wake_read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous_fd = signal.set_wakeup_fd(
            self._wake_write.fileno(), warn_on_full_buffer=False
        )
        self._previous = {
            number: signal.signal(number, self._handle) for number in _signal_numbers()
        }

    @classmethod
    def install(cls, on_second: Callable[[str], None] | None = None) -> QuitOnSignals | None:
        """None where the platform has no such signals to catch (Windows)."""
        return cls(on_second) if sys.platform != "win32" else None

    def quit_with(self, quit_now: Callable[[str], None]) -> None:
        """Call `quit_now` from the event loop, never from inside the handler; at once when a
        signal came while the window was still being built."""
        self.requested.connect(quit_now, Qt.ConnectionType.QueuedConnection)
        if self.received is not None:
            self.requested.emit(self.received)

    def uninstall(self) -> None:
        """Give the signals back their earlier handlers."""
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._wake_read.close()
        self._wake_write.close()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_read.recv(256)

    def _handle(self, number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.received is None:
            self.received = name
            log.info("%s received: quitting as a confirmed close does", name)
            self.requested.emit(name)
            return
        log.warning("a second %s while quitting: ending at once", name)
        if self._on_second is not None:
            self._on_second(name)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)


def _signal_numbers() -> list[signal.Signals]:
    return [getattr(signal, name) for name in QUIT_SIGNALS if hasattr(signal, name)]
