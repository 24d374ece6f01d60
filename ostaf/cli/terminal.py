"""Everything the command line prints goes through here. Names, notes, tags and PNG text come
from files anyone can write, so control characters in them are shown escaped (`\\x1b`), never
obeyed: no terminal title set, screen cleared or output line forged by a crafted file.

Lines to stderr go through tqdm, which clears a progress bar before printing and draws it
again after, so a warning never ends up glued to the bar.

Printing never fails on an encoding: `use_safe_streams` makes stdout and stderr write what
their encoding cannot hold as backslash escapes (`\\u03bb`), the notation already used for
control characters. A redirected stdout on Windows is cp1252, and names may be in any script.
"""

from __future__ import annotations

import io
import json
import re
import sys

from ostaf.limits import HIDDEN_CHARACTERS as _UNSAFE_IN_JSON  # json escapes the C0 ones
from ostaf.limits import UNSAFE_CHARACTERS as _UNSAFE


def use_safe_streams() -> None:
    """Make stdout and stderr escape what their encoding cannot write instead of raising
    (`λ` on cp1252 or ascii becomes `\\u03bb`): one setting for every line the command line
    prints, argparse's help and tqdm's bar included. The encoding itself is kept."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, keep_newlines: bool = False) -> str:
    """`text` with every control character escaped; with `keep_newlines`, line breaks stay
    (each line is escaped on its own, so a carriage return cannot rewrite a line)."""
    value = str(text)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in value.split("\n"))
    return _UNSAFE.sub(_escape, value)


def out(text: object = "", keep_newlines: bool = False) -> None:
    """Print one result line (or block) to stdout, escaped, in one write."""
    sys.stdout.write(printable(text, keep_newlines) + "\n")
    sys.stdout.flush()


def out_lines(lines: list[str]) -> None:
    """Print each of `lines` on a line of its own; a line break inside one is escaped too."""
    for line in lines:
        out(line)


def err(text: object) -> None:
    """Print one line to stderr, escaped, on a line of its own even while a bar is shown
    (in one write: the processes of a sharded batch share stderr)."""
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stderr):
        sys.stderr.write(printable(text) + "\n")
        sys.stderr.flush()


def json_text(data: object) -> str:
    """`data` as indented JSON in which no character can act on the terminal (json escapes
    the C0 controls; the others are escaped here, as valid JSON escapes)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def out_json(data: object) -> None:
    """Print `data` as JSON to stdout (see json_text)."""
    sys.stdout.write(json_text(data) + "\n")
    sys.stdout.flush()
