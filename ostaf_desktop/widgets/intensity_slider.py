"""The λ slider: 0–2 in steps of 0.01, with the value shown beside it, and the attribute's
word, which a click inserts into the prompt."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QSlider, QToolButton, QWidget

from ostaf_desktop.widgets.layout import ElidedLabel, label

SCALE = 100  # slider units per 1.0 of λ
NAME_WIDTH = (60, 130)  # the name column's narrowest and widest width in px


class IntensitySlider(QWidget):
    """A named λ slider; `intensity_changed(λ)` fires as it moves, `word_clicked(word)` when
    the attribute's word is clicked."""

    intensity_changed = Signal(float)
    word_clicked = Signal(str)

    def __init__(
        self, name: str, intensity: float, word: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.name = ElidedLabel(name)
        self.set_name_width(self.name_width())
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 2 * SCALE)
        self.slider.setPageStep(10)
        self.slider.setTickInterval(SCALE // 2)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setToolTip("Intensity λ: 0 = the base model, 1 = as learned, 2 = exaggerated")
        self.value = label(role="value")
        self.value.setMinimumWidth(48)
        self._word = word
        self.word = QToolButton()  # a chip: the word, with a sign that a click adds it
        self.word.setStyleSheet(
            "QToolButton { border: 1px solid #3a4150; border-radius: 8px; padding: 0 6px; }"
            "QToolButton:hover { border-color: #5b8def; }"
        )
        self.word.clicked.connect(lambda: self.word_clicked.emit(self._word))
        row.addWidget(self.name)
        row.addWidget(self.word)
        row.addWidget(self.slider, 1)
        row.addWidget(self.value)
        self.set_word(word)
        self.set_intensity(intensity)
        self.slider.valueChanged.connect(self._on_moved)

    def name_width(self) -> int:
        """The width its name needs, within NAME_WIDTH (longer names are elided)."""
        needed = self.name.fontMetrics().horizontalAdvance(self.name.full_text()) + 4
        return max(NAME_WIDTH[0], min(NAME_WIDTH[1], needed))

    def set_name_width(self, width: int) -> None:
        """Give the name column `width` px: the panel gives every slider the same one, so that
        the sliders of several attributes line up."""
        self.name.setFixedWidth(width)

    def set_word(self, word: str) -> None:
        """Show the attribute's word (none: no button)."""
        self._word = word
        self.word.setText(f"+ {word}")
        self.word.setToolTip(f"Insert {word} into the prompt: where it stands, the attribute goes")
        self.word.setVisible(bool(word))

    @property
    def intensity(self) -> float:
        return self.slider.value() / SCALE

    def set_intensity(self, value: float) -> None:
        blocker = QSignalBlocker(self.slider)
        self.slider.setValue(round(value * SCALE))
        del blocker
        self.value.setText(f"λ {value:.2f}")

    def _on_moved(self, position: int) -> None:
        self.value.setText(f"λ {position / SCALE:.2f}")
        self.intensity_changed.emit(position / SCALE)
