"""Tuning: the controls (what to learn, Tune and Cancel) and the run's progress (step/total,
elapsed and ETA, the live loss curve and the preview thumbnails every few steps)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QWidget,
)

from ostaf_desktop.binding import bind, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import display_pixmap
from ostaf_desktop.viewmodels.tuning import TuningViewModel
from ostaf_desktop.widgets.attribute_picker import AttributePicker
from ostaf_desktop.widgets.layout import Section, label
from ostaf_desktop.widgets.loss_curve import LossCurve

PREVIEW_SIDE = 76


class TuningControls(Section):
    """The attribute picker with the Tune and Cancel buttons under it."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Learn an attribute", parent)
        self.picker = AttributePicker(vm)
        self.tune_button = QPushButton(icon("tune"), "Tune")
        self.tune_button.setProperty("role", "primary")
        self.tune_button.setToolTip("Learn the attribute from the reference (Ctrl+Enter)")
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.setToolTip("Stop tuning; nothing is saved (Esc)")
        buttons = QHBoxLayout()
        buttons.addWidget(self.tune_button, 1)
        buttons.addWidget(self.cancel_button)
        self.hint = label(role="hint", wrap=True)
        self.body.addWidget(self.picker)
        self.body.addStretch(1)
        self.body.addLayout(buttons)
        self.body.addWidget(self.hint)

        self.tune_button.clicked.connect(vm.tune)
        self.cancel_button.clicked.connect(vm.cancel)
        bind(vm, "can_tune", self.tune_button, "enabled")
        bind(vm, "running", self.cancel_button, "enabled")
        bind(vm, "tune_hint", self.hint, "text")


class TuningProgress(Section):
    """Progress bar, stage and time, loss curve and the preview thumbnails of a run."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Tuning run", parent)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.stage = label(role="value")
        self.time = label(role="hint")
        self.summary = label(role="hint")
        status = QHBoxLayout()
        status.addWidget(self.stage)
        status.addWidget(self.summary, 1)
        status.addWidget(self.time)
        self.curve = LossCurve()
        self.previews = QWidget()
        self.preview_row = QHBoxLayout(self.previews)
        self.preview_row.setContentsMargins(0, 0, 0, 0)
        self.preview_row.setSpacing(4)
        self.preview_row.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(self.previews)
        scroll.setWidgetResizable(True)
        scroll.setMinimumHeight(PREVIEW_SIDE + 22)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        row = QHBoxLayout()
        row.addWidget(self.curve, 2)
        row.addWidget(scroll, 3)
        self.body.addLayout(status)
        self.body.addWidget(self.progress)
        self.body.addLayout(row, 1)

        bind(vm, "stage_text", self.stage, "text")
        bind(vm, "stage_text", self.stage, "visible", convert=bool)
        bind(vm, "time_text", self.time, "text")
        bind(vm, "summary", self.summary, "text")
        bind(vm, "total", self.progress, "maximum", convert=lambda total: max(1, total))
        bind(vm, "step", self.progress, "value")
        bind(vm, "total", self.progress, "visible", convert=bool)
        bind_to(vm, "losses", self.curve.set_losses, self)
        bind_to(vm, "total", self.curve.set_total, self)
        bind_to(vm, "previews", self._show_previews, self)

    def _show_previews(self, previews: tuple[tuple[int, QImage], ...]) -> None:
        while self.preview_row.count() > 1:
            item = self.preview_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for step, image in previews:
            thumb = QLabel()
            thumb.setPixmap(display_pixmap(image, PREVIEW_SIDE, PREVIEW_SIDE))
            thumb.setToolTip(f"preview at step {step}")
            thumb.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
            thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.preview_row.insertWidget(self.preview_row.count() - 1, thumb)
        if not previews:
            empty = label("Previews appear here while tuning", "hint")
            self.preview_row.insertWidget(0, empty)
