"""Metadata of rendered PNGs (DESIGN §5): the A1111 `parameters` text chunk that other tools
read, and the project's own JSON chunk for loss-free recall, read through its schema
(`ImageRecord`): a chunk that does not fit it is not this app's record. No torch here."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError
from pydantic import Field, JsonValue

from ostaf.errors import InputImageError
from ostaf.images import opened
from ostaf.library.atomic import atomic_write_bytes
from ostaf.records import RecordError, parse_record

PARAMETERS_KEY = "parameters"
OSTAF_KEY = "ostaf"
SAMPLER_LABELS = {"ddim": "DDIM", "euler": "Euler", "dpmpp2m": "DPM++ 2M"}
# A1111/Forge "Schedule type" values of the schedules one can choose. Without one, A1111 1.9+
# takes "Automatic", which is Karras for DPM++ 2M and Uniform for Euler, so "model" (a model's
# own scheduler config) is written as the A1111 schedule nearest to what it sampled
# (rendering.a1111_schedule_label). DDIM ignores the schedule in A1111 and is written without.
SCHEDULE_LABELS = {"karras": "Karras", "simple": "Simple"}
MAX_TEXT_CHUNK = 1_000_000
HexHash = Annotated[str, Field(pattern=r"^[0-9a-f]{16,64}$")]
Count = Annotated[int, Field(ge=1, le=100_000)]


@dataclass
class ImageAttribute:
    """One attribute an image was rendered with, as its PNG record names it."""

    intensity: Annotated[float, Field(allow_inf_nan=False)]
    content_hash: HexHash  # a file name in a library: hex only, so it stays inside it
    name: str = ""
    kind: str = ""
    file: Annotated[str, Field(pattern=r"^([0-9a-f]{16})?$")] = ""  # the library file's id
    word: str = ""


@dataclass
class ImageModel:
    name: str = ""
    source: str = ""
    fingerprint: str = ""
    sha256: str | None = None  # None for a diffusers folder (no single file to hash)


@dataclass
class ImageRecord:
    """The project's own JSON chunk of a rendered PNG (see `rendering._metadata`), read with
    every field's type checked; unknown keys are ignored."""

    prompt: str
    seed: Annotated[int, Field(ge=0, lt=2**64)]
    steps: Count
    guidance: Annotated[float, Field(allow_inf_nan=False)]
    width: Count
    height: Count
    sampler: str
    negative_prompt: str = ""
    # Records written before schedules could be chosen sampled with the model's own.
    schedule: str = "model"
    project: str = ""
    model: ImageModel = field(default_factory=ImageModel)
    attributes: list[ImageAttribute] = field(default_factory=list)


@dataclass(frozen=True)
class PngMetadata:
    """What a PNG says of how it was made: A1111's text and this app's record."""

    parameters: str | None  # the A1111 `parameters` text
    record: ImageRecord | None  # this app's record, when the PNG holds one that fits
    data: dict[str, JsonValue] | None  # the same record as written (unknown keys kept)
    problem: str = ""  # why a chunk named like ours was not taken as our record


def parse_image_record(raw: str) -> tuple[ImageRecord, dict[str, JsonValue]]:
    """The app's JSON chunk typed by its schema, and as written; RecordError saying which
    field is wrong (a lone surrogate, a list instead of a record, a mistyped field…)."""
    if len(raw) > MAX_TEXT_CHUNK:
        raise RecordError(f"it holds more than {MAX_TEXT_CHUNK:,} characters")
    return parse_record(ImageRecord, raw), parse_record(dict[str, JsonValue], raw)


def record_of(chunks: Mapping[Any, object]) -> PngMetadata:
    """The metadata held in a PNG's text chunks (`img.info` or `img.text`)."""
    parameters = chunks.get(PARAMETERS_KEY)
    raw = chunks.get(OSTAF_KEY)
    text = parameters if isinstance(parameters, str) else None
    if raw is None:
        return PngMetadata(text, None, None)
    try:
        record, data = parse_image_record(str(raw))
    except RecordError as exc:
        return PngMetadata(text, None, None, f"the OSTAF record is damaged ({exc})")
    return PngMetadata(text, record, data)


def quote(value: object) -> str:
    """A1111 quoting: values holding ',', ':' or a newline become JSON strings."""
    text = str(value)
    if any(ch in text for ch in ",:\n"):
        return json.dumps(text, ensure_ascii=False)
    return text


def a1111_parameters(prompt: str, negative_prompt: str, pairs: list[tuple[str, object]]) -> str:
    """The `parameters` text: prompt, optional negative prompt line, then `Key: value, …`."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in pairs))
    return "\n".join(lines)


def png_bytes(image: Image.Image, parameters: str, record: dict[str, Any]) -> bytes:
    """Encode `image` as PNG with both metadata chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, parameters)
    info.add_itxt(OSTAF_KEY, json.dumps(record, sort_keys=True, ensure_ascii=False))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(
    path: Path,
    image: Image.Image,
    parameters: str,
    record: dict[str, Any],
    make_folder: bool = True,
) -> Path:
    """Write the PNG atomically (a crash never leaves half an image); `make_folder` False:
    into a folder that must exist."""
    atomic_write_bytes(path, png_bytes(image, parameters, record), make_folder)
    return path


def read_png_metadata(path: Path | str) -> tuple[str | None, dict[str, Any] | None]:
    """The `parameters` text and the project's JSON record of a PNG (each None if absent or,
    for the record, when it does not fit the schema)."""
    found = read_png(path)
    return found.parameters, found.data


def read_png(path: Path | str) -> PngMetadata:
    """A PNG's metadata: A1111's text and this app's record, read through its schema;
    InputImageError when the file is no readable PNG."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"image {path} does not exist or is not a file; check the path")
    try:
        # Refused before decoding when it declares too many pixels (text chunks after the
        # image data are only found by decoding it).
        with opened(path, f"image {path}") as img:
            if img.format != "PNG":
                raise InputImageError(f"{path} is a {img.format} image; only PNGs carry parameters")
            text = getattr(img, "text", {}) or {}
    except InputImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"{path} is not a readable PNG ({exc})") from exc
    return record_of(text)


_PAIR = re.compile(r'\s*([\w ()+\-/.]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, Any]:
    """Parse A1111 `parameters` text into prompt, negative prompt and the key/value pairs."""
    lines = text.strip("\n").split("\n")
    pairs_line = lines[-1] if len(lines) > 1 and "Steps:" in lines[-1] else ""
    body = lines[:-1] if pairs_line else lines
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line.removeprefix("Negative prompt:").strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    values: dict[str, str] = {}
    for match in _PAIR.finditer(pairs_line):
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"'):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        values[key] = value
    return {
        "prompt": "\n".join(prompt_lines),
        "negative_prompt": "\n".join(negative_lines),
        "values": values,
    }
