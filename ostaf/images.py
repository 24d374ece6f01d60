"""Reading reference images and masks: any common format, EXIF orientation respected,
alpha flattened, cropped and resized to the model's resolution (no torch here)."""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ostaf.errors import InputImageError

MAX_PIXELS = 80_000_000  # refuse before decoding: 80 MP is far beyond any camera's reference
MIN_SIDE = 32
THUMBNAIL_SIDE = 96

Box = tuple[int, int, int, int]  # left, top, right, bottom in the upright image's pixels


@dataclass
class Reference:
    """A reference image prepared for tuning."""

    image: Image.Image  # RGB, size × size
    mask: Image.Image | None  # L, size × size, 255 = drives the loss
    sha256: str
    original_size: tuple[int, int]
    file_name: str
    notes: list[str] = field(default_factory=list)


def open_image(path: Path | str, what: str = "image") -> Image.Image:
    """Open an image upright (EXIF applied) and decoded, or raise InputImageError."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"{what} {path} does not exist; check the path")
    too_large = (
        f"{what} {path} has too many pixels to use safely; scale it below 80 megapixels first"
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise InputImageError(too_large)
                img.load()
                return ImageOps.exif_transpose(img)
    except InputImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputImageError(too_large) from exc
    except UnidentifiedImageError as exc:
        raise InputImageError(
            f"{what} {path} is not a readable image (PNG, JPEG, WebP, BMP, TIFF…); "
            "open it in an image editor and save it again"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(
            f"{what} {path} is damaged or truncated ({exc}); save it again"
        ) from exc


def flatten_alpha(
    img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)
) -> Image.Image:
    """RGB copy of `img`, transparent parts composited onto `background`."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def square_box(size: tuple[int, int], crop: Box | None) -> Box:
    """The crop box clipped to the image, then centre-squared (the model sees a square)."""
    width, height = size
    left, top, right, bottom = crop if crop is not None else (0, 0, width, height)
    left, top = max(0, left), max(0, top)
    right, bottom = min(width, right), min(height, bottom)
    if right - left < 1 or bottom - top < 1:
        raise InputImageError(f"crop box {crop} lies outside the {width}×{height} image")
    side = min(right - left, bottom - top)
    cx, cy = (left + right) // 2, (top + bottom) // 2
    left, top = max(0, cx - side // 2), max(0, cy - side // 2)
    return left, top, left + side, top + side


def load_reference(
    path: Path | str, size: int, crop: Box | None = None, mask_path: Path | str | None = None
) -> Reference:
    """Prepare the reference (and its optional mask) at `size`×`size` pixels."""
    path = Path(path)
    upright = open_image(path, "reference image")
    width, height = upright.size
    if min(width, height) < MIN_SIDE:
        raise InputImageError(
            f"reference image {path} is only {width}×{height} pixels; use one at least "
            f"{MIN_SIDE} pixels on each side ({size} or more is best)"
        )
    notes = []
    box = square_box(upright.size, crop)
    side = box[2] - box[0]
    if side < size:
        notes.append(f"the reference is upscaled from {side} to {size} pixels: details may blur")
    image = flatten_alpha(upright).crop(box).resize((size, size), Image.Resampling.LANCZOS)
    mask = None
    if mask_path is not None:
        mask = load_mask(mask_path, upright.size, box, size)
    return Reference(
        image=image,
        mask=mask,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        original_size=(width, height),
        file_name=path.name,
        notes=notes,
    )


def load_mask(path: Path | str, image_size: tuple[int, int], box: Box, size: int) -> Image.Image:
    """A mask for the reference: white (or opaque) = the region that drives tuning."""
    raw = open_image(path, "mask")
    gray = raw.getchannel("A") if raw.mode in ("RGBA", "LA") else raw.convert("L")
    if gray.size != image_size:
        gray = gray.resize(image_size, Image.Resampling.NEAREST)
    mask = gray.crop(box).resize((size, size), Image.Resampling.BILINEAR)
    if int(np.asarray(mask).max()) < 128:
        raise InputImageError(
            f"mask {path} marks no region (it is all dark); paint the region to keep in white"
        )
    return mask


def thumbnail_data_url(img: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of `img` as a data URL (kept inside attribute files and LoRA metadata)."""
    thumb = img.convert("RGB").copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url: str) -> Image.Image:
    """Decode a `data:image/png;base64,` URL (as written by `thumbnail_data_url`)."""
    prefix = "data:image/png;base64,"
    if not url.startswith(prefix):
        raise InputImageError("thumbnail is not a PNG data URL")
    try:
        with Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :], validate=True))) as img:
            if img.width * img.height > 1024 * 1024:
                raise InputImageError("thumbnail is unreasonably large")
            img.load()
            return img.convert("RGB")
    except (ValueError, OSError, UnidentifiedImageError) as exc:
        raise InputImageError(f"thumbnail cannot be decoded ({exc})") from exc
