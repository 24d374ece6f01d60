"""Small layout helpers shared by the panels (titles, hint labels, framed sections)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.rendering import SAMPLER_CHOICES, SCHEDULE_CHOICES


def label(text: str = "", role: str = "", wrap: bool = False) -> QLabel:
    """A QLabel with a style role ("title", "hint", "value", "warning", "error")."""
    widget = QLabel(text)
    if role:
        widget.setProperty("role", role)
    widget.setWordWrap(wrap)
    if wrap:
        widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return widget


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" to the width it gets, and then shows
    the full text in its tooltip; it never asks for more width than a few characters."""

    def __init__(
        self,
        text: str = "",
        role: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
    ) -> None:
        super().__init__(parent)
        self._mode = mode
        if role:
            self.setProperty("role", role)
        self._full = ""
        self._tip = ""  # a tooltip set by the caller, shown when nothing is elided
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self._elide()
        self.updateGeometry()

    def full_text(self) -> str:
        return self._full

    def setToolTip(self, tip: str) -> None:
        self._tip = tip
        self._elide()

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(
            min(hint.width(), self.fontMetrics().horizontalAdvance("M…") + 4), hint.height()
        )

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right()
        return QSize(width + 2, hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = self.fontMetrics().elidedText(self._full, self._mode, width)
        QLabel.setText(self, shown)
        elided = shown != self._full
        QLabel.setToolTip(self, self._full if elided and not self._tip else self._tip)
        if elided and self._tip and self._full not in self._tip:
            QLabel.setToolTip(self, f"{self._full}\n\n{self._tip}")


def show_start(field: QLineEdit) -> None:
    """Show the beginning of a long text set from outside (Qt shows its end); not while the
    user is typing in the field."""
    if not field.hasFocus():
        field.setCursorPosition(0)


def compact_combo(min_chars: int = 8) -> QComboBox:
    """A combo box that can shrink to `min_chars` characters (its current text is then elided;
    the list still shows every item in full), so a narrow column does not cut off its row."""
    combo = QComboBox()
    combo.setMinimumContentsLength(min_chars)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    return combo


def tool_button(icon_name: str, tip: str, checkable: bool = False) -> QToolButton:
    button = QToolButton()
    button.setIcon(icon(icon_name))
    button.setToolTip(tip)
    button.setCheckable(checkable)
    button.setAutoRaise(True)
    return button


def sampling_controls() -> tuple[QComboBox, QSpinBox, QDoubleSpinBox]:
    """The sampler, steps and guidance (CFG) inputs of the Render panel and the Batch dialog."""
    sampler = compact_combo()
    for text, value in SAMPLER_CHOICES:
        sampler.addItem(text, value)
    steps = QSpinBox()
    steps.setRange(1, 500)
    guidance = QDoubleSpinBox()
    guidance.setRange(0, 50)
    guidance.setSingleStep(0.5)
    guidance.setDecimals(1)
    return sampler, steps, guidance


def schedule_control() -> QComboBox:
    """The noise schedule beside the sampler, named as A1111/Forge's "Schedule type"."""
    schedule = compact_combo()
    for text, value in SCHEDULE_CHOICES:
        schedule.addItem(text, value)
    schedule.setToolTip(
        "Schedule type of Euler and DPM++ 2M, as A1111/Forge name it (DDIM has none). Karras: "
        "what A1111 uses for DPM++ 2M by default. Simple: A1111 re-renders it step for step. "
        "Model's own: the model's scheduler settings, as images made before this choice."
    )
    return schedule


class ScrolledColumn(QScrollArea):
    """A column that scrolls vertically when the window is short. It is never narrower than
    its content plus the scroll bar: with no horizontal scrolling, less would cut text off.
    `inside_panel`: it lies in a panel, whose background shows through."""

    def __init__(
        self, widget: QWidget, parent: QWidget | None = None, inside_panel: bool = False
    ) -> None:
        super().__init__(parent)
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        if inside_panel:
            self.viewport().setAutoFillBackground(False)
            widget.setAutoFillBackground(False)
            self.setStyleSheet("QScrollArea { background: transparent; }")

    def minimumSizeHint(self) -> QSize:
        widget = self.widget()
        content = widget.minimumSizeHint().width() if widget is not None else 0
        bar = self.verticalScrollBar().sizeHint().width()
        return QSize(content + bar, super().minimumSizeHint().height())


class Section(QFrame):
    """A framed panel with a title row; add content to `body`."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "panel")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(10, 6, 10, 6)
        outer.setSpacing(6)
        self.header = QHBoxLayout()
        self.header.setSpacing(2)
        self.title = label(title, "title")
        self.header.addWidget(self.title)
        self.header.addStretch(1)
        outer.addLayout(self.header)
        self.body: QBoxLayout = QVBoxLayout()
        self.body.setSpacing(6)
        outer.addLayout(self.body, 1)

    def add_header_button(self, button: QToolButton) -> QToolButton:
        self.header.addWidget(button, 0, Qt.AlignmentFlag.AlignRight)
        return button


def confirm(parent: QWidget, title: str, text: str) -> bool:
    """Ask Yes / Cancel (Cancel is the default); True when the user chose Yes."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes
