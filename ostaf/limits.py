"""The limits of what the app writes, in one place: every command, editor and request checks
them before writing, and every record read from a file is checked against the same ones
(ostaf.records), so a file can hold nothing that no command could have written."""

from __future__ import annotations

import re

MAX_NAME = 120  # attribute names
MAX_TAG = 40  # characters in one tag
MAX_TAGS = 50  # tags on one attribute
MAX_NOTES = 4000  # characters of an attribute's notes
MAX_FILE_NAME = 255  # a reference's file name, as file systems allow
MAX_SIDE = 4096  # rendering and tuning sizes, in pixels
MAX_REFERENCE_SIDE = 1 << 24  # a reference image's side (its pixel count is capped apart)
MAX_IMAGES = 10_000  # the seeds of one render, the cells of one batch
MAX_CLASS_WORD = 64
MAX_CAPTION = 300
TOKEN = re.compile(r"[\w-]{1,32}")  # a placeholder token: one word of letters/digits
SHA256 = r"^[0-9a-f]{64}$"

# Characters that act on a terminal or hide what a text says: C1 controls and DEL, the
# invisible ones that reorder or break lines (bidi overrides, line separators), and lone
# surrogates (undecodable bytes of a file name; no encoder writes them). The command line
# shows them escaped; names and tags may not hold them, nor the C0 controls.
_HIDDEN = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
HIDDEN_CHARACTERS = re.compile(f"[{_HIDDEN}]")
UNSAFE_CHARACTERS = re.compile(f"[\x00-\x1f{_HIDDEN}]")


def check_label(text: str, what: str, limit: int) -> str:
    """`text` when it fits on one line of at most `limit` characters, is not blank and holds
    no control or invisible character; ValueError saying which rule it breaks."""
    if len(text) > limit:
        raise ValueError(f"{what} has {len(text)} characters; keep it to {limit} at most")
    if not text.strip():
        raise ValueError(f"{what} cannot be empty")
    found = UNSAFE_CHARACTERS.search(text)
    if found is not None:
        raise ValueError(
            f"{what} holds the control or invisible character U+{ord(found.group()):04X}; "
            "use visible characters only"
        )
    return text


def check_crop(box: tuple[int, ...] | list[int]) -> None:
    """A crop box (left, top, right, bottom) in an image's pixels: four whole numbers, the
    right and bottom edges past the left and top ones, none beyond what an image can have."""
    if len(box) != 4 or any(type(v) is not int for v in box):
        raise ValueError(f"crop {box!r} must be four whole numbers: left, top, right, bottom")
    left, top, right, bottom = box
    if not (0 <= left < right <= MAX_REFERENCE_SIDE and 0 <= top < bottom <= MAX_REFERENCE_SIDE):
        raise ValueError(
            f"crop {list(box)} must satisfy 0 <= left < right and 0 <= top < bottom, "
            f"each at most {MAX_REFERENCE_SIDE}"
        )
