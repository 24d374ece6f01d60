"""The error banner: a one-line message, a copy button and the details behind a toggle."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.crash_handling import log_file
from ostaf_desktop.error_report import ErrorReport
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.widgets.layout import tool_button


class ErrorBanner(QFrame):
    """Shows `session.error`; hidden while there is none."""

    def __init__(self, session: SessionViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "banner-error")
        self._report: ErrorReport | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        row = QHBoxLayout()
        badge = QLabel()
        badge.setPixmap(icon("error").pixmap(20, 20))
        self.message = QLabel()
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setWordWrap(True)
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.copy_button = QPushButton(icon("copy"), "Copy")
        self.copy_button.setToolTip("Copy the message and details to the clipboard")
        self.close_button = tool_button("close", "Dismiss")
        row.addWidget(badge)
        row.addWidget(self.message, 1)
        for button in (self.details_button, self.copy_button, self.close_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(180)
        self.details.setVisible(False)
        layout.addWidget(self.details)

        self.details_button.toggled.connect(self.details.setVisible)
        self.copy_button.clicked.connect(self.copy)
        self.close_button.clicked.connect(session.dismiss_error)
        bind_to(session, "error", self._show, self)

    def _show(self, report: ErrorReport | None) -> None:
        self._report = report
        self.setVisible(report is not None)
        if report is None:
            self.details_button.setChecked(False)
            return
        self.message.setText(report.message)
        self.message.setToolTip(report.details or report.message)
        self.details.setPlainText(self.full_text())
        self.details_button.setEnabled(bool(report.details))

    def full_text(self) -> str:
        if self._report is None:
            return ""
        parts = [self._report.message]
        if self._report.details:
            parts.append(self._report.details)
        parts.append(f"Log file: {log_file()}")
        return "\n\n".join(parts)

    def copy(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(self.full_text())
