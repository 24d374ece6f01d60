"""Reference images: formats, EXIF orientation, alpha, crop, masks and hostile files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ostaf.errors import InputImageError
from ostaf.images import load_reference, square_box


def test_exif_orientation_is_respected(tmp_path: Path) -> None:
    img = Image.new("RGB", (120, 60), "white")
    img.paste((255, 0, 0), (0, 0, 60, 60))  # left half red when stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "photo.jpg"
    img.save(path, exif=exif, quality=95)
    ref = load_reference(path, 32)
    assert ref.original_size == (60, 120)  # upright: portrait
    top = ref.image.getpixel((16, 2))
    bottom = ref.image.getpixel((16, 29))
    assert top[0] > 200 and top[1] < 60  # displayed: red on top
    assert bottom == (255, 255, 255) or min(bottom) > 230


def test_alpha_is_flattened_onto_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (64, 64), (0, 0, 255, 0))
    img.paste((0, 0, 255, 255), (16, 16, 48, 48))
    path = tmp_path / "cutout.webp"
    img.save(path, lossless=True)
    ref = load_reference(path, 64)
    assert ref.image.mode == "RGB"
    assert ref.image.getpixel((2, 2)) == (255, 255, 255)
    assert ref.image.getpixel((32, 32)) == (0, 0, 255)


def test_crop_and_square(tmp_path: Path) -> None:
    assert square_box((200, 100), None) == (50, 0, 150, 100)
    assert square_box((200, 100), (0, 0, 60, 40)) == (10, 0, 50, 40)
    img = Image.new("RGB", (200, 100), "white")
    img.paste((0, 255, 0), (0, 0, 40, 40))
    path = tmp_path / "wide.png"
    img.save(path)
    ref = load_reference(path, 64, crop=(0, 0, 40, 40))
    assert ref.image.getpixel((32, 32)) == (0, 255, 0)
    assert any("upscaled" in n for n in ref.notes)
    with pytest.raises(InputImageError, match="outside"):
        load_reference(path, 32, crop=(300, 300, 400, 400))


def test_unreadable_and_truncated_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputImageError, match=r"notes\.png is not a readable image"):
        load_reference(text, 64)
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), "red").save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputImageError, match=r"cut\.png"):
        load_reference(cut, 64)
    with pytest.raises(InputImageError, match="does not exist"):
        load_reference(tmp_path / "missing.png", 64)


def test_tiny_and_huge_images_are_refused(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (10, 10)).save(tiny)
    with pytest.raises(InputImageError, match="only 10×10 pixels"):
        load_reference(tiny, 64)
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 9_000)).save(huge)  # 90 MP, a few kB on disk
    with pytest.raises(InputImageError, match="too many pixels"):
        load_reference(huge, 64)


def test_mask_is_cropped_with_the_image(tmp_path: Path) -> None:
    img = tmp_path / "img.png"
    Image.new("RGB", (200, 100), "white").save(img)
    mask = Image.new("L", (200, 100), 0)
    mask.paste(255, (50, 0, 100, 100))  # left half of the centre square
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    ref = load_reference(img, 20, mask_path=mask_path)
    assert ref.mask is not None and ref.mask.size == (20, 20)
    assert ref.mask.getpixel((2, 10)) == 255 and ref.mask.getpixel((17, 10)) == 0
    dark = tmp_path / "dark.png"
    Image.new("L", (200, 100), 0).save(dark)
    with pytest.raises(InputImageError, match="marks no region"):
        load_reference(img, 20, mask_path=dark)


def test_the_subject_crop_frames_the_marked_subject_inside_the_picture() -> None:
    from ostaf.images import SUBJECT_FILL, subject_crop, subject_span

    mask = np.zeros((300, 400), bool)
    mask[40:70, 100:140] = True  # 30 × 40, away from the edges
    left, top, right, bottom = subject_crop(mask)
    assert right - left == bottom - top == round(40 / SUBJECT_FILL)
    assert (left + right) / 2 == pytest.approx(120, abs=1)
    assert (top + bottom) / 2 == pytest.approx(55, abs=1)
    assert subject_span(mask, (left, top, right, bottom)) == pytest.approx(SUBJECT_FILL, abs=0.02)
    assert subject_span(mask, (0, 0, 400, 300)) == pytest.approx(40 / 300)
    # In a corner: the box is moved inside, not cut, and still holds the whole subject.
    corner = np.zeros((300, 400), bool)
    corner[280:300, 0:25] = True
    left, top, right, bottom = subject_crop(corner)
    assert (left, bottom) == (0, 300) and right - left == bottom - top
    assert subject_span(corner, (left, top, right, bottom)) == pytest.approx(SUBJECT_FILL, 0.05)
    # A subject larger than the picture allows: the largest square, around it.
    assert subject_crop(np.ones((300, 400), bool)) == (50, 0, 350, 300)
    with pytest.raises(InputImageError, match="marks no subject"):
        subject_crop(np.zeros((30, 40), bool))
    assert subject_span(mask, (300, 200, 400, 300)) == 0.0
