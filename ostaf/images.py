"""Reading reference images and masks: any common format, EXIF orientation respected,
alpha flattened, cropped and resized to the model's resolution (no torch here)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ostaf.errors import InputImageError

MAX_PIXELS = 80_000_000  # refuse before decoding: 80 MP is far beyond any camera's reference
MAX_THUMBNAIL_PIXELS = 1024 * 1024
MAX_THUMBNAIL_BYTES = 1 << 20  # a stored thumbnail's PNG (those written here take a few kB)
DATA_URL_PREFIX = "data:image/png;base64,"
MIN_SIDE = 32
THUMBNAIL_SIDE = 96
ASPECT_TOLERANCE = 0.01  # a mask this close to the image's shape is a scaled copy of it
# How much of the model's view a subject spans (its larger side, as a share of the view's):
# the world models' training pictures span 0.42-0.78, and a reference cropped to about the
# middle of that carried shape and appearance over about twice as far as a small subject
# (BENCHMARKS.md, "The users' kind of picture, cropped and masked").
SUBJECT_FILL = 0.6
SMALL_SUBJECT = 0.42

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


@contextlib.contextmanager
def opened(
    source: Path | IO[bytes], what: str, max_pixels: int = MAX_PIXELS
) -> Iterator[Image.Image]:
    """An image opened lazily (only its header read), refused with InputImageError when it
    declares more than `max_pixels`, before anything is decoded: a 181-byte PNG may claim
    20000×10000 pixels. Other read errors are left to the caller."""
    with warnings.catch_warnings():
        # Pillow only warns between 89 and 179 megapixels; our own limit decides below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except Image.DecompressionBombError as exc:
            limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
            raise InputImageError(
                f"{what} has too many pixels to open safely (over {limit:.0f} megapixels); not read"
            ) from exc
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise InputImageError(
                f"{what} has too many pixels to open safely ({width}×{height}, "
                f"{width * height / 1e6:.3g} megapixels; at most {max_pixels / 1e6:.3g}); "
                "not read"
            )
        yield img


def open_image(path: Path | str, what: str = "image") -> Image.Image:
    """Open an image upright (EXIF applied), decoded, with 8-bit samples, or raise
    InputImageError."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"{what} {path} does not exist; check the path")
    try:
        with opened(path, f"{what} {path}") as img:
            img.load()
            return eight_bit(ImageOps.exif_transpose(img))
    except InputImageError:
        raise
    except UnidentifiedImageError as exc:
        raise InputImageError(
            f"{what} {path} is not a readable image (PNG, JPEG, WebP, BMP, TIFF…); "
            "open it in an image editor and save it again"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputImageError(
            f"{what} {path} is damaged or truncated ({exc}); save it again"
        ) from exc


def eight_bit(img: Image.Image) -> Image.Image:
    """`img` with 8-bit samples. Pillow's own conversion clips 16- and 32-bit samples at
    255, so a 16-bit grey picture came out solid white: here 16-bit ("I;16*") and 32-bit
    integer ("I") samples are scaled from 0..65535, floats ("F") from 0..1 (or 0..255, or
    0..65535, whichever range holds them)."""
    if not (img.mode.startswith("I;16") or img.mode in ("I", "F")):
        return img
    values = np.asarray(img, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if img.mode == "F":
        top = float(values.max(initial=0.0))
        full = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
    else:
        full = 65535.0
    scaled = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def flatten_alpha(
    img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)
) -> Image.Image:
    """RGB copy of `img`, transparent parts composited onto `background`."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def subject_crop(mask: np.ndarray, fill: float = SUBJECT_FILL) -> Box:
    """The square crop that frames the subject marked in `mask` (H × W, true or non-zero =
    subject): centred on it, the subject's larger side `fill` of the crop's, moved inside
    the picture where it would cross an edge, and no larger than the picture's shorter side."""
    rows, columns = np.nonzero(mask)
    if rows.size == 0:
        raise InputImageError("the mask marks no subject; paint the subject with the mask brush")
    height, width = mask.shape[:2]
    top, bottom = int(rows.min()), int(rows.max()) + 1
    left, right = int(columns.min()), int(columns.max()) + 1
    side = min(width, height, max(1, round(max(bottom - top, right - left) / fill)))
    x = min(max(round((left + right - side) / 2), 0), width - side)
    y = min(max(round((top + bottom - side) / 2), 0), height - side)
    return x, y, x + side, y + side


def subject_span(mask: np.ndarray, box: Box) -> float:
    """The larger side of the subject marked in `mask`, as a share of the shorter side of
    `box` (the square the model sees); 0 when nothing in the box is marked."""
    left, top, right, bottom = box
    rows, columns = np.nonzero(mask[top:bottom, left:right])
    if rows.size == 0:
        return 0.0
    larger = max(int(rows.max() - rows.min()), int(columns.max() - columns.min())) + 1
    return larger / max(1, min(right - left, bottom - top))


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
        mask = load_mask(mask_path, upright.size, box, size, notes)
    return Reference(
        image=image,
        mask=mask,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        original_size=(width, height),
        file_name=path.name,
        notes=notes,
    )


def mask_at(
    path: Path | str, image_size: tuple[int, int], notes: list[str] | None = None
) -> Image.Image:
    """The mask file as grayscale at the reference image's size: white (or opaque) = the
    region that drives tuning. A mask of another size is used only when it has the image's
    shape (a scaled copy, as a painting program or the app's canvas exports one), with a
    note; any other shape would put the region in the wrong place, so it is refused."""
    raw = open_image(path, "mask")
    gray = raw.getchannel("A") if raw.mode in ("RGBA", "LA") else raw.convert("L")
    if gray.size != image_size:
        (mw, mh), (iw, ih) = gray.size, image_size
        if abs((mw / mh) / (iw / ih) - 1.0) > ASPECT_TOLERANCE:
            raise InputImageError(
                f"mask {path} is {mw}×{mh} pixels but the reference image is {iw}×{ih}, another "
                "shape; paint the mask over the reference itself (same size or scaled with it)"
            )
        gray = gray.resize(image_size, Image.Resampling.NEAREST)
        if notes is not None:
            notes.append(f"the mask ({mw}×{mh}) was scaled to the reference's {iw}×{ih} pixels")
    return gray


def load_mask(
    path: Path | str,
    image_size: tuple[int, int],
    box: Box,
    size: int,
    notes: list[str] | None = None,
) -> Image.Image:
    """The mask (`mask_at`) cropped to `box` and scaled to `size`; refused when the crop
    leaves no region."""
    gray = mask_at(path, image_size, notes)
    mask = gray.crop(box).resize((size, size), Image.Resampling.BILINEAR)
    if int(np.asarray(mask).max()) < 128:
        raise InputImageError(
            f"mask {path} marks no region (it is all dark); paint the region to keep in white"
        )
    return mask


def mask_subject_crop(mask_path: Path | str, image_path: Path | str) -> Box:
    """`subject_crop` of the region painted in the mask file, in the (upright) reference
    image's pixels: the crop that frames the subject the mask marks."""
    size = open_image(image_path, "reference image").size
    painted = np.asarray(mask_at(mask_path, size)) > 127
    if not painted.any():
        raise InputImageError(
            f"mask {mask_path} marks no region (it is all dark); paint the subject in white"
        )
    return subject_crop(painted)


def thumbnail_data_url(img: Image.Image, side: int = THUMBNAIL_SIDE) -> str:
    """A small PNG of `img` as a data URL (kept inside attribute files and LoRA metadata)."""
    thumb = img.convert("RGB").copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG", optimize=True)
    return DATA_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def check_thumbnail_url(url: str) -> None:
    """Refuse (InputImageError) what is not a PNG data URL of at most MAX_THUMBNAIL_BYTES
    declaring at most MAX_THUMBNAIL_PIXELS: only its header is read, nothing is decoded."""
    if not url.startswith(DATA_URL_PREFIX):
        raise InputImageError("thumbnail is not a PNG data URL")
    if len(url) > MAX_THUMBNAIL_BYTES * 4 // 3 + len(DATA_URL_PREFIX) + 4:
        raise InputImageError(f"thumbnail is larger than {MAX_THUMBNAIL_BYTES // 1024} kB")
    try:
        data = io.BytesIO(base64.b64decode(url[len(DATA_URL_PREFIX) :], validate=True))
        with opened(data, "thumbnail", MAX_THUMBNAIL_PIXELS) as img:
            if img.format != "PNG":
                raise InputImageError(f"thumbnail is a {img.format} image, not a PNG")
    except (ValueError, OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise InputImageError(f"thumbnail cannot be read ({exc})") from exc


def image_from_data_url(url: str) -> Image.Image:
    """Decode a `data:image/png;base64,` URL (as written by `thumbnail_data_url`)."""
    check_thumbnail_url(url)
    try:
        data = io.BytesIO(base64.b64decode(url[len(DATA_URL_PREFIX) :], validate=True))
        with opened(data, "thumbnail", MAX_THUMBNAIL_PIXELS) as img:
            img.load()
            return eight_bit(img).convert("RGB")
    except (ValueError, OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise InputImageError(f"thumbnail cannot be decoded ({exc})") from exc
