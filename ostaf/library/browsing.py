"""What the library views show of attributes, read without torch: the search filter and the
stored reference thumbnails (checked to decode, never trusted to be small)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ostaf.library.attribute_meta import AttributeMeta, normalize_tags

if TYPE_CHECKING:
    from PIL import Image

    from ostaf.library.projects import AttributeEntry


def filter_attributes(
    entries: Iterable[AttributeEntry],
    text: str = "",
    tags: Iterable[str] = (),
    kind: str | None = None,
) -> list[AttributeEntry]:
    """Entries whose name, notes, tags or reference name contain `text` (any case), that
    carry every tag in `tags`, and (if given) are of `kind`."""
    needle = text.strip().casefold()
    wanted = set(normalize_tags(tags))
    found = []
    for entry in entries:
        meta = entry.meta
        if kind and str(meta.kind) != kind:
            continue
        if not wanted <= set(meta.tags):
            continue
        haystack = " ".join([meta.name, meta.notes, *meta.tags, meta.reference.file_name])
        if needle and needle not in haystack.casefold():
            continue
        found.append(entry)
    return found


def thumbnail_image(meta: AttributeMeta) -> Image.Image | None:
    """The reference thumbnail stored in the attribute (None if it has none)."""
    from ostaf.errors import InputImageError
    from ostaf.images import image_from_data_url

    if not meta.reference.thumbnail:
        return None
    try:
        return image_from_data_url(meta.reference.thumbnail)
    except InputImageError:
        return None


def thumbnail_png(meta: AttributeMeta) -> bytes | None:
    """The stored thumbnail as PNG bytes, checked to decode (None if it has none)."""
    if thumbnail_image(meta) is None:
        return None
    return base64.b64decode(meta.reference.thumbnail.split(",", 1)[1])
