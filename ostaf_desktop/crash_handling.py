"""Logging to a file in the user log dir, and hooks that turn every uncaught exception (GUI
thread, worker thread, asyncio) into a logged traceback and an error banner, never a silent
exit."""

from __future__ import annotations

import logging
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Signal

from ostaf import paths
from ostaf_desktop.error_report import ErrorReport

LOG_NAME = "ostaf-desktop.log"
log = logging.getLogger("ostaf_desktop")


def setup_logging(level: int = logging.INFO) -> Path | None:
    """Log to <user log dir>/ostaf-desktop.log (rotated); returns the file, None if unwritable."""
    folder = paths.log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            folder / LOG_NAME, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        print(f"OSTAF: cannot write logs to {folder}: {exc}", file=sys.stderr)
        return None
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)
    return folder / LOG_NAME


def log_file() -> Path:
    return paths.log_dir() / LOG_NAME


class ErrorRelay(QObject):
    """Carries reports from any thread to the GUI thread (the signal is queued across threads)."""

    reported = Signal(object)  # ErrorReport


def install_exception_hooks(relay: ErrorRelay) -> None:
    """Route uncaught exceptions from every thread to the log and to `relay`."""

    def report(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.error("uncaught exception", exc_info=(kind, exc, tb))
        relay.reported.emit(ErrorReport.from_exception(exc.with_traceback(tb)))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            report(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = report
    threading.excepthook = thread_hook


def asyncio_exception_handler(relay: ErrorRelay) -> Any:
    """An asyncio loop exception handler that reports like the hooks above."""

    def handle(_loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, BaseException):
            log.error("asyncio: %s", context.get("message", ""), exc_info=exc)
            relay.reported.emit(ErrorReport.from_exception(exc))
        else:
            log.error("asyncio: %s", context.get("message", context))

    return handle
