"""Errors as values the GUI can show: a one-line message and the full details (no Qt)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ostaf.errors import OstafError


@dataclass(frozen=True)
class ErrorReport:
    """What the error banner shows: `message` on one line, `details` behind a button."""

    message: str
    details: str = ""
    error_type: str = ""  # the exception's class name, e.g. "OutOfMemoryError"

    @classmethod
    def from_exception(cls, exc: BaseException, doing: str = "") -> ErrorReport:
        """The project's own errors keep their message; anything else says it was unexpected."""
        details = "".join(traceback.format_exception(exc)).rstrip()
        if isinstance(exc, OstafError):
            message = str(exc)
        else:
            text = str(exc).strip().splitlines()
            what = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
            message = f"Unexpected error{f' while {doing}' if doing else ''} ({what})"
        return cls(" ".join(message.split()), details, type(exc).__name__)
