"""Typed reading of the JSON records kept on disk: attribute metadata, project.json,
settings.json and a tuning run's saved state. Each record has one schema (a dataclass or a
TypedDict with typed fields) and is checked here, strictly: a string is never taken for a
number, nor a number for a string, and a value out of range is refused with the field's name.
A text holding a lone surrogate (which no encoder writes) is refused too, by the JSON reader.
The limits are the writers' own (ostaf.limits).

Adding a field to a record is one typed line in its class; pydantic does the checking.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from ostaf.limits import SHA256

T = TypeVar("T")
JsonScalar = str | int | float | bool | None
Sha256 = Annotated[str, Field(pattern=SHA256)]  # a SHA-256 as hashlib writes it: 64 hex digits


class RecordError(ValueError):
    """A record that does not fit its schema; the message names the first wrong field."""


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}  # built once per record type, when first read


def parse_record(kind: type[T], text: str | bytes) -> T:
    """Parse JSON `text` as a `kind` record or raise RecordError saying which field is wrong."""
    adapter: TypeAdapter[T] | None = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_json(text, strict=True)
    except ValidationError as exc:
        raise RecordError(describe(exc)) from exc
    except RecursionError as exc:
        raise RecordError("it is nested too deeply") from exc


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error as a short phrase: `field.sub: what is wrong`."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"])
    if first["type"] in ("json_invalid", "string_unicode") and (
        "surrogate" in message or "hex escape" in message or "unicode" in message
    ):
        message = (
            f"text that is not valid Unicode (a lone surrogate or a broken \\u escape: {message})"
        )
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def scalar_extras(values: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Keep unknown keys of a record only when they hold plain finite JSON scalars (a newer
    version's additions survive a rewrite; anything else is refused)."""
    for key, value in values.items():
        if key in known:
            continue
        if not isinstance(value, JsonScalar):
            raise ValueError(f"{key} must be text, a number or true/false")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number")
    return values
