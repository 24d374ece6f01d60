"""Command-line options of `python main.py`, parsed in one place (a new flag is one
`add_argument` here and one field in LaunchOptions). Unknown arguments are left for Qt."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LaunchOptions:
    screenshot: Path | None = None
    project: str | None = None
    screenshot_timeout_s: float = 180.0
    self_test: bool = False
    screenshot_size: tuple[int, int] | None = None  # None: the default window size


def window_size(text: str) -> tuple[int, int]:
    """`WIDTHxHEIGHT` (e.g. 1280x720) as two numbers; argparse names the flag on failure."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720")
    width, height = int(parts[0]), int(parts[1])
    if not (320 <= width <= 16384 and 240 <= height <= 16384):
        raise argparse.ArgumentTypeError(f"{text!r}: use 320x240 to 16384x16384")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="OSTAF Desktop: learn an attribute from one image and apply it to prompts.",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE.png",
        help="open the window, wait until it is idle, save a screenshot to FILE.png and exit",
    )
    parser.add_argument("--project", metavar="NAME", help="open this project (name or folder)")
    parser.add_argument(
        "--screenshot-timeout",
        type=float,
        default=LaunchOptions.screenshot_timeout_s,
        metavar="SECONDS",
        help="give up waiting for the window to become idle after this long (default 180)",
    )
    parser.add_argument(
        "--screenshot-size",
        type=window_size,
        metavar="WIDTHxHEIGHT",
        help="with --screenshot: the window's size, e.g. 1280x720 (default 1440x900)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check the installation without a window (load the demo model, tune a few steps, "
        "render one image); prints one line and exits 0, or names what failed and exits 1",
    )
    return parser


def parse_launch_options(argv: Sequence[str]) -> tuple[LaunchOptions, list[str]]:
    """Our options and the arguments meant for Qt (e.g. -platform offscreen)."""
    args, rest = build_parser().parse_known_args(list(argv))
    options = LaunchOptions(
        screenshot=args.screenshot,
        project=args.project,
        screenshot_timeout_s=args.screenshot_timeout,
        self_test=args.self_test,
        screenshot_size=args.screenshot_size,
    )
    return options, rest
