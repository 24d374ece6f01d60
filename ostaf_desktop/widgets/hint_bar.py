"""A non-modal note shown while the built-in demo model is in use."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ostaf_desktop.binding import bind
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.widgets.layout import tool_button

DEMO_HINT = (
    "<b>Demo model in use</b>: a small model that only knows coloured, patterned shapes "
    "(circle, square, triangle, star, heart) in flat, outline or sketchy style, at 64 px. "
    "Try <i>a red striped heart, flat style, on a gray background</i>, then an attribute's "
    "word in place of the words it carries. For real pictures choose your "
    "Stable Diffusion 1.x, 2.x or XL model in <b>Settings → Base model</b>."
)


class DemoModelHint(QFrame):
    """Says the demo model is in use and how to choose a checkpoint."""

    open_settings = Signal()

    def __init__(self, session: SessionViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "banner-info")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        badge = QLabel()
        badge.setPixmap(icon("info").pixmap(20, 20))
        self.text = QLabel(DEMO_HINT)
        self.text.setWordWrap(True)
        self.choose = QPushButton(icon("settings"), "Choose a model…")
        self.dismiss = tool_button("close", "Hide this note")
        row.addWidget(badge)
        row.addWidget(self.text, 1)
        row.addWidget(self.choose)
        row.addWidget(self.dismiss)
        self.choose.clicked.connect(self.open_settings)
        self.dismiss.clicked.connect(session.dismiss_demo_hint)
        bind(session, "show_demo_hint", self, "visible")
