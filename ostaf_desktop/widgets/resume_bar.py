"""A non-modal bar offering to resume the open project's interrupted tuning run."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ostaf_desktop.binding import bind
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.resume import ResumeViewModel


class ResumeBar(QFrame):
    """Says which run was interrupted and where, with Resume and Discard."""

    def __init__(self, vm: ResumeViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "banner-resume")
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        badge = QLabel()
        badge.setPixmap(icon("restore").pixmap(20, 20))
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.resume_button = QPushButton(icon("tune"), "Resume")
        self.resume_button.setProperty("role", "primary")
        self.resume_button.setToolTip(
            "Continue from the last saved step with the run's own settings: the result is the "
            "one an uninterrupted run gives"
        )
        self.discard_button = QPushButton(icon("delete"), "Discard")
        self.discard_button.setToolTip("Delete the saved state of this run")
        row.addWidget(badge)
        row.addWidget(self.text, 1)
        row.addWidget(self.resume_button)
        row.addWidget(self.discard_button)
        self.resume_button.clicked.connect(vm.resume)
        self.discard_button.clicked.connect(vm.discard)
        bind(vm, "message", self.text, "text")
        bind(vm, "resume_text", self.resume_button, "text")
        bind(vm, "can_resume", self.resume_button, "visible")
        bind(vm, "visible", self, "visible")
