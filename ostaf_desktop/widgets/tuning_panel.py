"""Tuning: the controls (what to learn, Tune and Cancel) and the run's progress (step/total,
elapsed and ETA, the live loss curve and the preview thumbnails every few steps)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QImage
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import display_pixmap
from ostaf_desktop.viewmodels.tuning import TuningViewModel
from ostaf_desktop.widgets.attribute_picker import AttributePicker
from ostaf_desktop.widgets.layout import ElidedLabel, ScrolledColumn, Section, label
from ostaf_desktop.widgets.loss_curve import LossCurve

PREVIEW_SIDE = 48


def preview_thumbnail(step: int, image: QImage, prompt: str) -> QWidget:
    """One tuning preview with its step under it; the tooltip says what it renders."""
    box = QWidget()
    column = QVBoxLayout(box)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    picture = QLabel()
    picture.setPixmap(display_pixmap(image, PREVIEW_SIDE, PREVIEW_SIDE))
    picture.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
    picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
    caption = label(f"step {step}", "hint")
    caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
    column.addWidget(picture)
    column.addWidget(caption)
    column.addStretch(1)  # the step right under its picture, however tall the row is
    box.setToolTip(f"Step {step}: “{prompt}”" if prompt else f"Step {step}")
    return box


class TuningControls(Section):
    """The attribute picker, which scrolls when the window is short, with the Tune and
    Cancel buttons under it, always in view (Advanced open or not)."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Learn an attribute", parent)
        self.picker = AttributePicker(vm)
        self.choices = ScrolledColumn(self.picker, inside_panel=True)
        self.tune_button = QPushButton(icon("tune"), "Tune")
        self.tune_button.setProperty("role", "primary")
        self.tune_button.setToolTip("Learn the attribute from the reference (Ctrl+Enter)")
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.setToolTip("Stop tuning; nothing is saved (Esc)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.tune_button, 1)
        buttons.addWidget(self.cancel_button)
        # One line (the full text in its tooltip when cut): a wrapped line under the buttons
        # was clipped by the scrolling column at 900 px.
        self.hint = ElidedLabel(role="hint")
        self.body.addWidget(self.choices, 1)
        self.body.addLayout(buttons)
        self.body.addWidget(self.hint)

        self.tune_button.clicked.connect(vm.tune)
        self.cancel_button.clicked.connect(vm.cancel)
        bind(vm, "can_tune", self.tune_button, "enabled")
        bind(vm, "running", self.cancel_button, "enabled")
        bind_to(vm, "tune_hint", self.hint.setText, self)


class TuningProgress(Section):
    """Progress bar, stage and time, loss curve and the preview thumbnails of a run."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Tuning run", parent)
        self.vm = vm
        self.preview_caption = ElidedLabel(role="hint")
        self.header.insertWidget(1, self.preview_caption, 1)
        self.header.setStretch(2, 0)  # the caption, not the spacer, takes the free width
        self.progress = QProgressBar()
        # The stage says "Step 45 of 300" already; the bar's own text overlapped it in a
        # narrow column.
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(self.fontMetrics().height())
        self.stage = ElidedLabel(role="value")
        self.time = ElidedLabel(role="hint")
        self.summary = ElidedLabel(role="hint")
        # One row for the state, the bar and the time: the panel stays short on small screens.
        self.progress.setMinimumWidth(90)
        status = QHBoxLayout()
        status.addWidget(self.stage)
        status.addWidget(self.summary, 1)
        status.addWidget(self.progress, 1)
        status.addWidget(self.time)
        self.time.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.curve = LossCurve()
        self.previews = QWidget()
        self.preview_row = QHBoxLayout(self.previews)
        self.preview_row.setContentsMargins(0, 0, 0, 0)
        self.preview_row.setSpacing(4)
        self.preview_row.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(self.previews)
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(PREVIEW_SIDE + 34)  # a step label under, a scroll bar below
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row = QHBoxLayout()
        row.addWidget(self.curve, 2)
        row.addWidget(scroll, 3)
        self.body.addLayout(status)
        self.body.addLayout(row, 1)

        bind_to(vm, "stage_text", self.stage.setText, self)
        bind_to(vm, "total", self._fit_stage, self)
        bind(vm, "stage_text", self.stage, "visible", convert=bool)
        bind_to(vm, "time_text", self.time.setText, self)
        bind_to(vm, "summary", self.summary.setText, self)
        bind(vm, "total", self.progress, "maximum", convert=lambda total: max(1, total))
        bind(vm, "step", self.progress, "value")
        bind(vm, "total", self.progress, "visible", convert=bool)
        bind_to(vm, "losses", self.curve.set_losses, self)
        bind_to(vm, "total", self.curve.set_total, self)
        bind_to(vm, "step", self.curve.set_step, self)
        bind_to(vm, "previews", self._show_previews, self)
        bind_to(vm, "preview_prompt", self._show_preview_prompt, self)

    def _fit_stage(self, total: int) -> None:
        """Room for the longest "Step N of N" of the run, so that the stage is never cut."""
        font = QFont(self.stage.font())  # bold by the style sheet, maybe not polished yet
        font.setBold(True)
        widest = QFontMetrics(font).horizontalAdvance(f"Step {total} of {total}")
        self.stage.setMinimumWidth(widest + 4 if total else 0)

    def _show_preview_prompt(self, prompt: str) -> None:
        self.preview_caption.setText(f"previews: “{prompt}”" if prompt else "")
        self._show_previews(self.vm.previews)

    def _show_previews(self, previews: tuple[tuple[int, QImage], ...]) -> None:
        while self.preview_row.count() > 1:
            item = self.preview_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        prompt = self.vm.preview_prompt
        for step, image in previews:
            self.preview_row.insertWidget(
                self.preview_row.count() - 1, preview_thumbnail(step, image, prompt)
            )
        if not previews:
            empty = label("Previews appear here while tuning", "hint")
            self.preview_row.insertWidget(0, empty)
