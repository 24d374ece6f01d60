"""Application entry point (the desktop window arrives with the desktop issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Until the window exists, run the headless demo of the core."""
    from ostaf.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    return cli_main(["demo", *args])
