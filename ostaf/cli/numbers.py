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
