"""Render the app icon (resources/icons/app.svg) into the files each platform wants:
PNGs of every launcher size for Linux, app.ico for Windows and app.icns for macOS.

The outputs are committed, so building on Windows or macOS needs neither this script nor Qt's
SVG renderer. Run it again after app.svg changes:

    python packaging/make_icons.py

It needs no display (Qt's offscreen platform) and gives the same bytes for the same SVG and
the same Qt and Pillow versions.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ICONS = ROOT / "resources" / "icons"
SOURCE = ICONS / "app.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest an .ico holds
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)  # 512@2x is 1024


def png_name(size: int) -> str:
    """The committed PNG of one size (the Linux install script and the tests use this)."""
    return f"app-{size}.png"


def render_svg(svg: Path, sizes: tuple[int, ...]) -> dict[int, Image.Image]:
    """Rasterise `svg` at each size with Qt's own SVG renderer (what the window draws)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    images: dict[int, Image.Image] = {}
    for size in sizes:
        canvas = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        canvas.fill(0)
        painter = QPainter(canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        rgba = canvas.convertToFormat(QImage.Format.Format_RGBA8888)
        pixels = bytes(rgba.constBits())
        images[size] = Image.frombytes(
            "RGBA", (size, size), pixels, "raw", "RGBA", rgba.bytesPerLine()
        )
    return images


def write_icons(svg: Path = SOURCE, out: Path = ICONS) -> list[Path]:
    """Write the PNGs, app.ico and app.icns next to the SVG; returns the files written."""
    images = render_svg(svg, tuple(sorted({*PNG_SIZES, *ICO_SIZES, *ICNS_SIZES})))
    written: list[Path] = []
    for size in PNG_SIZES:
        path = out / png_name(size)
        images[size].save(path, optimize=True)
        written.append(path)
    # Each size is drawn at that size, not scaled down from the largest, so that small icons
    # keep their strokes sharp.
    largest_ico = images[ICO_SIZES[-1]]
    largest_ico.save(
        out / "app.ico",
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=[images[s] for s in ICO_SIZES[:-1]],
    )
    written.append(out / "app.ico")
    images[ICNS_SIZES[-1]].save(out / "app.icns", append_images=[images[s] for s in ICNS_SIZES])
    written.append(out / "app.icns")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=SOURCE, help="the source SVG")
    parser.add_argument("--out", type=Path, default=ICONS, help="the folder to write into")
    args = parser.parse_args()
    for path in write_icons(args.svg, args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
