"""Logging to a file in the user log dir, and hooks that turn every uncaught exception (GUI
thread, worker thread, asyncio) into a logged traceback and an error banner, never a silent
exit. A process that dies anyway (segfault, fatal error, kill) leaves a run record behind, and
the next start says so."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from filelock import FileLock, Timeout
from PySide6.QtCore import QObject, Signal

from ostaf import paths
from ostaf.file_reading import MiB, UnreadableFileError, read_regular_file
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


# -- runs that died --------------------------------------------------------------------------
RUNS_FOLDER = "runs"  # in the data folder: a record per running app, and crash logs
KEEP_CRASH_LOGS = 10
MAX_MARKER = 4096  # {"pid": …, "started": …, "cause": …}
MAX_CRASH_LOG = 16 * MiB  # faulthandler's tracebacks of every thread: a few kB to a few MB


def runs_dir() -> Path:
    return paths.data_dir() / RUNS_FOLDER


@dataclass(frozen=True)
class DeadRun:
    """An earlier run that ended without a clean exit."""

    started: float  # epoch seconds
    last_seen: float  # the last sign of life: the crash log's time, else the last heartbeat
    crash_log: Path
    crash_text: str  # what faulthandler wrote at the end ("" after SIGKILL or power loss)
    cause: str = ""  # what the run itself said of its end, when it could

    def report(self, others: int = 0) -> ErrorReport:
        """A banner message naming when it died and where its log is."""
        when = _clock(self.last_seen)
        if self.cause:
            how = f"at {when} ({self.cause})"
        elif self.crash_text:
            first = next((ln for ln in self.crash_text.splitlines() if ln.strip()), "")
            how = f"at {when} ({first.strip()})"
        else:
            how = f"after {when} (it was killed or the computer stopped; no crash report)"
        more = f" {others} earlier run(s) ended the same way." if others else ""
        message = (
            f"OSTAF stopped unexpectedly last time, {how}; it had started at "
            f"{_clock(self.started)}. Crash log: {self.crash_log}.{more}"
        )
        details = self.crash_text or "No crash report was written."
        return ErrorReport(message, details, "PreviousRunDied")


def _clock(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch)
    same_day = moment.date() == datetime.now().date()
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")


class RunRecord:
    """`<data>/runs/<id>.running` exists while this process runs, held by a lock the OS lets go
    when the process dies, and faulthandler writes a fatal error's tracebacks to
    `<id>.crash.log`. A clean exit removes both. (A SIGTERM is a request to quit, see
    `quit_signals`: faulthandler does not dump on it, because reading the frames of threads
    that are running, as it does from a signal handler, can itself crash the process.)"""

    def __init__(self, folder: Path) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.marker = folder / f"{stamp}-{os.getpid()}.running"
        self.crash_log = folder / f"{stamp}-{os.getpid()}.crash.log"
        self._lock = FileLock(f"{self.marker}.lock")
        self._log: IO[str] | None = None
        self._started = time.time()

    @classmethod
    def start(cls, folder: Path | None = None) -> RunRecord | None:
        """Begin recording this run; None (logged) when the data folder is not writable."""
        record = cls(runs_dir() if folder is None else folder)
        try:
            record.marker.parent.mkdir(parents=True, exist_ok=True)
            record._lock.acquire(timeout=0)
            record._log = open(record.crash_log, "w", encoding="utf-8")  # noqa: SIM115 (kept open)
            record._write_marker()
        except (OSError, Timeout) as exc:
            log.warning("cannot record this run in %s: %s", record.marker.parent, exc)
            record.stop()
            return None
        faulthandler.enable(record._log, all_threads=True)
        return record

    def _write_marker(self, cause: str = "") -> None:
        fields = {"pid": os.getpid(), "started": self._started}
        self.marker.write_text(json.dumps({**fields, "cause": cause}), encoding="utf-8")

    def note_cause(self, cause: str) -> None:
        """Say how this run is ending, for the next start to show (when it cannot end cleanly)."""
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._write_marker(cause[:200])

    def dump_threads(self) -> None:
        """Write every thread's traceback to the crash log (called with the GIL held, so no
        thread's frames change while they are read)."""
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.flush()
                faulthandler.dump_traceback(self._log, all_threads=True)

    def heartbeat(self) -> None:
        """Touch the record, so that a later start knows when this run was last alive."""
        with contextlib.suppress(OSError):  # the next heartbeat tries again
            self.marker.touch()

    def stop(self) -> None:
        """A clean exit: nothing to report next time."""
        if self._log is not None:
            faulthandler.disable()
            self._log.close()
            self._log = None
            with contextlib.suppress(OSError):
                self.crash_log.unlink(missing_ok=True)
        for path in (self.marker,):
            path.unlink(missing_ok=True)
        if self._lock.is_locked:
            self._lock.release()
        Path(f"{self.marker}.lock").unlink(missing_ok=True)


def collect_dead_runs(folder: Path | None = None) -> list[DeadRun]:
    """Runs whose record is still there but whose process is gone, newest first. Each is
    reported once: its record is removed (its crash log is kept, the last few of them)."""
    folder = runs_dir() if folder is None else folder
    dead: list[DeadRun] = []
    for marker in sorted(folder.glob("*.running")):
        lock = FileLock(f"{marker}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # another OSTAF is running: its record is alive
        except OSError as exc:
            log.warning("cannot check %s: %s", marker, exc)
            continue
        try:
            dead.append(_read_dead_run(marker))
            marker.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot read %s: %s", marker, exc)
        finally:
            lock.release()
            Path(f"{marker}.lock").unlink(missing_ok=True)
    _prune_crash_logs(folder)
    return sorted(dead, key=lambda run: run.last_seen, reverse=True)


def _read_dead_run(marker: Path) -> DeadRun:
    crash_log = marker.with_name(marker.name.removesuffix(".running") + ".crash.log")
    heartbeat = marker.stat().st_mtime
    try:
        fields = json.loads(read_regular_file(marker, MAX_MARKER))
        started = float(fields["started"])
        cause = str(fields.get("cause", ""))[:200]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        started, cause = heartbeat, ""
    try:
        data = read_regular_file(crash_log, MAX_CRASH_LOG)
        text = data.decode("utf-8", errors="replace").strip()
        written = crash_log.stat().st_mtime if text else heartbeat
    except UnreadableFileError as exc:  # a pipe, a device or a huge file: kept, not read
        text, written = f"The crash log {exc}.", heartbeat
    except OSError:
        text, written = "", heartbeat
    if not text:
        crash_log.unlink(missing_ok=True)
        crash_log = log_file()  # nothing of its own: the app's log has what happened before
    return DeadRun(started, max(heartbeat, written), crash_log, text[-20_000:], cause)


def _prune_crash_logs(folder: Path) -> None:
    logs = sorted(folder.glob("*.crash.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[KEEP_CRASH_LOGS:]:
        old.unlink(missing_ok=True)
