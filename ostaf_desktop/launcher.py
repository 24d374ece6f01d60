"""`python main.py` and the `ostaf` command. Flags that need no window are handled here, before
Qt is imported, so that they run on machines with no display (or no Qt installed at all)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ostaf_desktop.launch_options import parse_launch_options

SELF_TEST_FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Start the app, or run `--self-test` headlessly; returns the exit code."""
    options, qt_args = parse_launch_options(sys.argv[1:] if argv is None else argv)
    if options.self_test:
        return self_test()
    from ostaf_desktop.app import run_app  # Qt is imported here, and only on this path

    return run_app(options, qt_args)


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
