"""Images that used to give silently wrong results or tracebacks: 16- and 32-bit samples
(a 16-bit grey became solid white), masks of another size (stretched without a word), and
PNGs that declare far more pixels than they hold (decompression bombs)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ostaf.cli.main import main
from ostaf.errors import InputImageError
from ostaf.images import image_from_data_url, load_reference, open_image
from ostaf.library.attribute_meta import METADATA_KEY
from ostaf.library.projects import ProjectStore
from tests.attribute_files import write_attribute_file


def bomb_png(width: int = 20_000, height: int = 10_000) -> bytes:
    """A tiny PNG whose header declares `width`×`height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"parameters\x00a bomb")
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


GRADIENT = np.tile(np.arange(256, dtype=np.float64), (64, 1))  # (64, 256): 0..255 per row


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "F 0..1"])
def test_deep_images_are_scaled_not_clipped(tmp_path: Path, mode: str) -> None:
    if mode == "I;16":
        path = tmp_path / "grey16.png"
        Image.fromarray((GRADIENT * 257).astype(np.uint16)).save(path)  # a 16-bit PNG
        assert Image.open(path).mode == "I;16"
    elif mode == "I":
        path = tmp_path / "grey32.tiff"
        Image.fromarray((GRADIENT * 257).astype(np.int32), mode="I").save(path)
    else:
        path = tmp_path / "float.tiff"
        scale = 1 / 255 if mode == "F 0..1" else 1.0
        Image.fromarray((GRADIENT * scale).astype(np.float32), mode="F").save(path)
    opened = np.asarray(open_image(path), dtype=np.float64)
    assert np.abs(opened - GRADIENT).max() <= 1  # not solid white, not black
    reference = load_reference(path, 64, crop=(0, 0, 64, 64))
    assert np.asarray(reference.image).mean() < 60  # the dark left end of the ramp


def test_a_mask_of_the_same_shape_is_scaled_with_a_note(tmp_path: Path) -> None:
    image = tmp_path / "ref.png"
    Image.new("RGB", (128, 96), "red").save(image)
    half = tmp_path / "half.png"
    Image.new("L", (64, 48), 255).save(half)
    reference = load_reference(image, 64, mask_path=half)
    assert reference.mask is not None and np.asarray(reference.mask).min() == 255
    assert reference.notes == ["the mask (64×48) was scaled to the reference's 128×96 pixels"]


def test_a_mask_of_another_shape_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "ref.png"
    Image.new("RGB", (128, 96), "red").save(image)
    square = tmp_path / "square.png"
    Image.new("L", (100, 100), 255).save(square)
    with pytest.raises(InputImageError, match=r"square\.png is 100×100 pixels but the reference"):
        load_reference(image, 64, mask_path=square)


def test_a_png_declaring_200_megapixels_is_refused_by_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    assert len(bomb.read_bytes()) < 200
    assert main(["info", str(bomb)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "too many pixels to open safely" in lines[0]
    middling = tmp_path / "middling.png"  # between Pillow's warning and its error
    middling.write_bytes(bomb_png(10_000, 10_000))
    assert main(["info", str(middling)]) == 2
    assert "10000×10000" in capsys.readouterr().err


@pytest.mark.parametrize("size", [(20_000, 10_000), (10_000, 10_000), (2_000, 2_000)])
def test_a_bomb_thumbnail_is_refused_in_one_line(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    size: tuple[int, int],
) -> None:
    url = "data:image/png;base64," + base64.b64encode(bomb_png(*size)).decode()
    with pytest.raises(InputImageError, match="too many pixels"):
        image_from_data_url(url)

    def with_thumbnail(name: str, thumbnail: str) -> Path:
        path = write_attribute_file(tmp_path / name)
        with safe_open(str(path), framework="numpy") as handle:
            meta = json.loads(handle.metadata()[METADATA_KEY])
        meta["reference"]["thumbnail"] = thumbnail
        save_file(load_file(str(path)), str(path), metadata={METADATA_KEY: json.dumps(meta)})
        return path

    # The schema reads a thumbnail's header (nothing is decoded): the bomb is refused on import.
    ProjectStore().create("Bombs").release()
    bomb = with_thumbnail("a.safetensors", url)
    assert main(["library", "import", "--project", "Bombs", str(bomb)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "reference.thumbnail: thumbnail has too many pixels" in line
    # A header that fits and pixels that do not decode: imported, and shown as unreadable.
    torn = base64.b64encode(bomb_png(8, 8)).decode()
    project = ProjectStore().find("Bombs")
    thumbnail = "data:image/png;base64," + torn
    entry = project.import_attribute(with_thumbnail("b.safetensors", thumbnail)).entry
    project.release()
    out = tmp_path / "thumb.png"
    code = main(["library", "show", "--project", "Bombs", entry.id, "--thumbnail", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "no readable thumbnail" in lines[0]
    assert not out.exists()
