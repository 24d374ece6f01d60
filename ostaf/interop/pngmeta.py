"""Metadata of rendered PNGs (DESIGN §5): the A1111 `parameters` text chunk that other tools
read, and the project's own JSON chunk for loss-free recall. No torch here."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ostaf.errors import InputImageError
from ostaf.images import opened
from ostaf.library.atomic import atomic_write_bytes

PARAMETERS_KEY = "parameters"
OSTAF_KEY = "ostaf"
SAMPLER_LABELS = {"ddim": "DDIM", "euler": "Euler", "dpmpp2m": "DPM++ 2M"}
# A1111/Forge "Schedule type" values of the schedules one can choose. Without one, A1111 1.9+
# takes "Automatic", which is Karras for DPM++ 2M and Uniform for Euler, so "model" (a model's
# own scheduler config) is written as the A1111 schedule nearest to what it sampled
# (rendering.a1111_schedule_label). DDIM ignores the schedule in A1111 and is written without.
SCHEDULE_LABELS = {"karras": "Karras", "simple": "Simple"}
MAX_TEXT_CHUNK = 1_000_000


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
    """The `parameters` text and the project's JSON record of a PNG (each None if absent)."""
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
    parameters = text.get(PARAMETERS_KEY)
    record = None
    raw = text.get(OSTAF_KEY)
    if raw and len(raw) <= MAX_TEXT_CHUNK:
        try:
            loaded = json.loads(raw)
            record = loaded if isinstance(loaded, dict) else None
        except (json.JSONDecodeError, RecursionError):
            record = None
    return parameters, record


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
