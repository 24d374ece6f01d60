"""File names for batch renders: a template filled with short, safe values (no torch here).

A name must work on every OS (no characters Windows refuses, no reserved device names such
as CON or NUL, short enough for Windows' 260-character paths), must stay inside the output
folder, and must not collide with another image of the same batch. Templates that break any
of this are refused before anything is rendered.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

from ostaf.errors import SettingsError
from ostaf.library.project_paths import is_reserved_name

FIELDS = ("project", "attribute", "kind", "prompt", "seed", "lambda", "index", "sampler")
DEFAULT_TEMPLATE = "{project}_{attribute}_{prompt}_{seed}_{lambda}.png"
SUFFIX = ".png"
MAX_TEMPLATE = 200
MAX_STEM = 140  # leaves room for the folder inside Windows' 260-character paths
WINDOWS_MAX_PATH = 259
FIELD_LIMITS = {"project": 32, "attribute": 48, "kind": 32, "prompt": 48}
_WINDOWS_FORBIDDEN = set('<>:"|?*')


def slug(text: str, limit: int = 48) -> str:
    """A short, lower-case, ASCII file-name part; long text keeps a hash so it stays unique."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    value = re.sub(r"[^A-Za-z0-9.+]+", "-", ascii_text).strip("-.").lower()
    value = re.sub(r"\.{2,}", ".", value)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    if not value:
        return f"x{digest}" if text else "x"
    if len(value) > limit:
        value = f"{value[: limit - 7].rstrip('-.')}-{digest}"
    return value


class NameTemplate:
    """A validated file-name template such as `{project}_{attribute}_{seed}.png`."""

    def __init__(self, text: str = DEFAULT_TEMPLATE) -> None:
        self.text = text.strip()
        self.fields = self._validate(self.text)
        if not self.text.lower().endswith(SUFFIX):
            self.text += SUFFIX

    @staticmethod
    def _validate(text: str) -> tuple[str, ...]:
        if not text:
            raise SettingsError("the file-name template is empty; e.g. use " + DEFAULT_TEMPLATE)
        if len(text) > MAX_TEMPLATE:
            raise SettingsError(f"the file-name template is longer than {MAX_TEMPLATE} characters")
        fields: list[str] = []
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise SettingsError(f"file-name template {text!r} is malformed ({exc})") from exc
        for literal, field, spec, conversion in parts:
            _check_literal(literal, text)
            if field is None:
                continue
            if field not in FIELDS:
                raise SettingsError(
                    f"file-name template field {{{field}}} is unknown; use "
                    + ", ".join(f"{{{f}}}" for f in FIELDS)
                )
            if spec or conversion:
                raise SettingsError(
                    f"file-name template field {{{field}}} takes no format; write {{{field}}}"
                )
            fields.append(field)
        if not fields:
            raise SettingsError(
                "the file-name template has no field, so every image would get the same name; "
                "add {index} or {seed}"
            )
        return tuple(fields)

    def fill(self, values: Mapping[str, str]) -> str:
        """The file name for one image: every value made safe, the whole name made portable."""
        safe = {k: slug(str(v), FIELD_LIMITS.get(k, 48)) for k, v in values.items()}
        name = self.text.format(**{f: safe[f] for f in self.fields})
        return portable_name(name)


def _check_literal(literal: str, template: str) -> None:
    if "/" in literal or "\\" in literal:
        raise SettingsError(
            f"file-name template {template!r} contains a folder separator; it names files "
            "inside the output folder only (choose the folder itself separately)"
        )
    if ".." in literal:
        raise SettingsError(f"file-name template {template!r} may not contain '..'")
    bad = sorted({ch for ch in literal if ch in _WINDOWS_FORBIDDEN or ord(ch) < 32})
    if bad:
        raise SettingsError(
            f"file-name template {template!r} contains {''.join(bad)!r}, "
            "which Windows does not allow in file names"
        )


def portable_name(name: str) -> str:
    """`name` adjusted for every OS: no leading dots, no reserved device names, not too long."""
    stem, suffix = name[: -len(SUFFIX)], name[-len(SUFFIX) :]
    stem = stem.lstrip(".").rstrip(". ") or "image"
    if is_reserved_name(stem):
        stem = f"_{stem}"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha1(stem.encode("utf-8")).hexdigest()[:6]
        stem = f"{stem[: MAX_STEM - 7]}-{digest}"
    return stem + suffix


def check_names(
    folder: Path,
    names: Iterable[tuple[str, str]],
    max_path: int | None = None,
) -> None:
    """Refuse names that leave `folder`, collide (ignoring case, as Windows and macOS do) or
    make paths too long. `names` holds (file name, what it shows) pairs for the messages."""
    limit = max_path if max_path is not None else (WINDOWS_MAX_PATH if os.name == "nt" else 4096)
    base = folder.resolve()
    seen: dict[str, str] = {}
    for name, what in names:
        if Path(name).name != name or name in (".", "..") or (base / name).parent != base:
            raise SettingsError(f"file name {name!r} would leave the output folder {folder}")
        key = unicodedata.normalize("NFC", name).casefold()
        if key in seen:
            raise SettingsError(
                f"the file-name template gives two images the same name {name!r} "
                f"({seen[key]}; {what}); add {{seed}}, {{lambda}} or {{index}} to it"
            )
        seen[key] = what
        if len(str(base / name)) > limit:
            raise SettingsError(
                f"the path {base / name} is longer than {limit} characters, which Windows "
                "refuses; choose a shorter output folder or template"
            )
