"""`python main.py` and the `ostaf` command. Flags that need no window are handled here, before
Qt is imported, so that they run on machines with no display (or no Qt installed at all)."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ostaf_desktop.launch_options import parse_launch_options

SELF_TEST_FAILED = 1
CANNOT_START = 2  # a system library or the PySide6 release makes the window impossible or unsafe


def main(argv: Sequence[str] | None = None) -> int:
    """Start the app (the process ends when its window closes), or run `--self-test`
    headlessly, or refuse to start; returns the exit code of the last two."""
    options, qt_args = parse_launch_options(sys.argv[1:] if argv is None else argv)
    if options.self_test:
        return self_test()
    problem = startup_problem(qt_args)
    if problem is not None:
        return CANNOT_START
    from ostaf_desktop.app import run_app  # Qt is imported here, and only on this path

    leave(run_app(options, qt_args))


def self_test() -> int:
    """`--self-test`: the one-line summary on stdout and 0, or the failing stage on stderr."""
    from ostaf.selftest import run_self_test

    report = run_self_test()
    # A windowed Windows build has no console: sys.stdout is None there and print() writes
    # nothing, so the exit code alone carries the answer.
    if report.ok:
        print(report.summary, flush=True)
        return 0
    print(report.summary, file=sys.stderr, flush=True)
    return SELF_TEST_FAILED


def startup_problem(qt_args: Sequence[str]) -> str | None:
    """Checks before the first window: the platform plugin's system libraries (Qt would abort
    blaming the wrong one), then a PySide6 release that would crash this Python later. The
    problem is shown (stderr, and a dialog where one can appear) and returned."""
    from ostaf_desktop.platform_libs import missing_platform_libraries

    missing = missing_platform_libraries(qt_args)
    if missing is not None:
        print(missing, file=sys.stderr, flush=True)  # no dialog: Qt cannot draw one
        return missing
    from ostaf_desktop.pyside_check import QtRuntime, refusal, show_refusal

    message = refusal(QtRuntime.current())
    if message is not None:
        show_refusal(message)
    return message


def leave(code: int) -> NoReturn:
    """End the process once the window has closed and everything is saved (projects released,
    worker stopped, run record removed). The interpreter's own teardown of torch, diffusers and
    Qt objects took 1.3-2.3 s after the window had gone, and gave nothing back: the exit
    handlers (log files) run, the streams are flushed, and the process ends."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(code)
