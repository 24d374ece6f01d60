"""The app's look: Fusion with a dark palette (images read best on a dark surround) and a
small style sheet for panel titles, banners and the primary buttons."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#5b8def"
STYLE_SHEET = f"""
QWidget {{ font-size: 10pt; }}
QLabel[role="title"] {{ font-size: 11pt; font-weight: 600; color: #e8ecf3; padding: 2px 0; }}
QLabel[role="hint"] {{ color: #9aa5b8; }}
QLabel[role="value"] {{ color: #e8ecf3; font-weight: 600; }}
QLabel[role="warning"] {{ color: #ffd27f; }}
QLabel[role="error"] {{ color: #ff8a80; }}
QFrame[role="panel"] {{ background: #262a33; border: 1px solid #323846; border-radius: 6px; }}
QFrame[role="banner-error"] {{
    background: #4a2326; border: 1px solid #8c3a3f; border-radius: 6px;
}}
QFrame[role="banner-info"] {{
    background: #22324d; border: 1px solid #3b5a8c; border-radius: 6px;
}}
QFrame[role="banner-resume"] {{
    background: #3a3222; border: 1px solid #8c6d3b; border-radius: 6px;
}}
QPushButton[role="primary"] {{
    background: {ACCENT}; color: white; font-weight: 600; border: none;
    border-radius: 5px; padding: 6px 14px;
}}
QPushButton[role="primary"]:hover {{ background: #6f9bf2; }}
QPushButton[role="primary"]:disabled {{ background: #3a4458; color: #8b93a3; }}
QToolButton[role="kind"] {{
    text-align: left; border: 1px solid #3a4150; border-radius: 6px; padding: 6px;
    background: #2b303b;
}}
QToolButton[role="kind"]:checked {{ border: 1px solid {ACCENT}; background: #2c3a57; }}
QListWidget {{ background: #1f232b; border: 1px solid #323846; border-radius: 4px; }}
QListWidget::item {{ padding: 4px; }}
QListWidget::item:selected {{ background: #34466b; color: white; }}
QProgressBar {{ border: 1px solid #3a4150; border-radius: 4px; text-align: center; height: 16px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QSplitter::handle {{ background: #1b1e24; }}
QStatusBar {{ color: #b9c2d0; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion, a dark palette, a readable font size and the style sheet."""
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#20242c",
        QPalette.ColorRole.WindowText: "#dfe4ec",
        QPalette.ColorRole.Base: "#1a1d23",
        QPalette.ColorRole.AlternateBase: "#242832",
        QPalette.ColorRole.ToolTipBase: "#2d3340",
        QPalette.ColorRole.ToolTipText: "#e8ecf3",
        QPalette.ColorRole.PlaceholderText: "#7d8699",
        QPalette.ColorRole.Text: "#dfe4ec",
        QPalette.ColorRole.Button: "#2c313c",
        QPalette.ColorRole.ButtonText: "#dfe4ec",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4ff",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c7485"))
    app.setPalette(palette)
    font = QFont(app.font())
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
