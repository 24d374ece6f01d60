"""Argument types for numbers on the command line: ASCII digits only (Python's `int` and
`float` also read other scripts' digits, 'nan' and 'inf'), with a message saying what is
wanted."""

from __future__ import annotations

import argparse

from ostaf.errors import SettingsError
from ostaf.requests import parse_number, parse_whole


def whole(text: str) -> int:
    """An argparse type: a whole number in ASCII digits."""
    try:
        return parse_whole(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def number(text: str) -> float:
    """An argparse type: a finite decimal number in ASCII digits."""
    try:
        return parse_number(text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def crop_box(text: str) -> tuple[int, int, int, int] | str:
    """An argparse type for --crop: "mask", or LEFT,TOP,RIGHT,BOTTOM in the image's pixels."""
    if text.strip() == "mask":
        return "mask"
    parts = text.split(",")
    try:
        left, top, right, bottom = (parse_whole(part.strip()) for part in parts)
    except (SettingsError, ValueError) as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a crop: give LEFT,TOP,RIGHT,BOTTOM in pixels (e.g. 40,0,440,400) "
            "or 'mask'"
        ) from exc
    if right <= left or bottom <= top:
        raise argparse.ArgumentTypeError(
            f"crop {text!r} is empty: RIGHT must be more than LEFT and BOTTOM more than TOP"
        )
    return left, top, right, bottom
