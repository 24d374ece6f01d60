"""A labelled contact sheet of a batch: one PNG, rows × columns of the rendered images.

Columns are the grid axes the user chose (by default attribute and intensity), rows are the
others (by default prompt and seed). Labels use Pillow's built-in font, so the sheet looks
the same on every machine; text outside ASCII is transliterated.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

from ostaf.render.batch_plan import SHEET_AXES, Cell

MAX_CELL_SIDE = 256
PAD = 6
LINE = 14
ROW_LABEL_WIDTH = 180
BACKGROUND = (255, 255, 255)
MISSING = (225, 225, 225)


def build_contact_sheet(
    cells: Sequence[Cell], images: Mapping[int, Image.Image], columns: Sequence[str]
) -> Image.Image:
    """Lay out `images` (by cell index) with one labelled column per value of `columns`."""
    rows = [axis for axis in SHEET_AXES if axis not in columns]
    col_keys = _ordered(cells, columns)
    row_keys = _ordered(cells, rows)
    col_labels = {k: _labels(c, columns) for c, k in _first(cells, columns).items()}
    row_labels = {k: _labels(c, rows) for c, k in _first(cells, rows).items()}
    sample = next(iter(images.values()))
    scale = min(1.0, MAX_CELL_SIDE / max(sample.size))
    cell_w, cell_h = round(sample.width * scale), round(sample.height * scale)
    col_w = max(cell_w, 96)
    header = PAD + LINE * max(len(v) for v in col_labels.values()) + PAD
    width = ROW_LABEL_WIDTH + len(col_keys) * (col_w + PAD) + PAD
    height = header + len(row_keys) * (cell_h + PAD) + PAD
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for col, key in enumerate(col_keys):
        x = ROW_LABEL_WIDTH + col * (col_w + PAD)
        for line, text in enumerate(col_labels[key]):
            draw.text((x, PAD + line * LINE), _fit(text, col_w, font), fill=(0, 0, 0), font=font)
    positions = {
        (row_keys.index(_key(c, rows)), col_keys.index(_key(c, columns))): c for c in cells
    }
    for row, key in enumerate(row_keys):
        y = header + row * (cell_h + PAD)
        for line, text in enumerate(row_labels[key]):
            draw.text(
                (PAD, y + line * LINE),
                _fit(text, ROW_LABEL_WIDTH - 2 * PAD, font),
                fill=(0, 0, 0),
                font=font,
            )
        for col in range(len(col_keys)):
            x = ROW_LABEL_WIDTH + col * (col_w + PAD)
            cell = positions.get((row, col))
            image = images.get(cell.index) if cell is not None else None
            if image is None:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=MISSING)
                continue
            thumb = image.convert("RGB").resize((cell_w, cell_h), Image.Resampling.LANCZOS)
            sheet.paste(thumb, (x, y))
    return sheet


def _key(cell: Cell, axes: Sequence[str]) -> tuple[object, ...]:
    return tuple(cell.axis_key(a) for a in axes)


def _ordered(cells: Sequence[Cell], axes: Sequence[str]) -> list[tuple[object, ...]]:
    return list(dict.fromkeys(_key(c, axes) for c in cells))


def _first(cells: Sequence[Cell], axes: Sequence[str]) -> dict[Cell, tuple[object, ...]]:
    seen: dict[tuple[object, ...], Cell] = {}
    for cell in cells:
        seen.setdefault(_key(cell, axes), cell)
    return {cell: key for key, cell in seen.items()}


def _labels(cell: Cell, axes: Sequence[str]) -> list[str]:
    labels = [_ascii(cell.axis_label(a)) for a in axes]
    return [text for text in labels if text] or [""]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _fit(text: str, width: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    """`text`, shortened with '...' until it fits `width` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."
