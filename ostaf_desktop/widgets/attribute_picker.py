"""Choosing what to learn: appearance, shape or style (each explained, with an example), an
optional class word and name, a quality preset and the advanced values."""

from __future__ import annotations

import html

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ostaf.method.regions import AttributeKind
from ostaf.requests import MAX_STEPS, PRESETS
from ostaf_desktop.binding import assign_when_checked, bind, bind_combo, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.prompt_examples import PromptExamples
from ostaf_desktop.viewmodels.tuning import ALL_THREE, CUSTOM, TuningViewModel
from ostaf_desktop.widgets.layout import compact_combo, label, show_start, tool_button
from ostaf_desktop.widgets.world_words import WorldWordPicker

ALL_THREE_TITLE = "All three (shape, appearance, style)"
ALL_THREE_SUMMARY = (
    "Shape, appearance and style of the reference in one run: three attributes, each with "
    "its own word, each usable alone"
)
ALL_THREE_EXAMPLE = "e.g. a character: its pose, its colours and its drawing style, separately"


class KindCard(QFrame):
    """One choice of what to learn (a kind, or all three): a radio button, what it captures
    and an example."""

    def __init__(
        self,
        kind: str,
        title: str = "",
        summary: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 5, 8, 5)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(1)
        badge = QLabel()
        badge.setPixmap(icon(kind if kind != ALL_THREE else "tune").pixmap(20, 20))
        if kind != ALL_THREE:
            title = title or AttributeKind(kind).value.title()
            summary = summary or AttributeKind(kind).summary
        self.radio = QRadioButton(title)
        self.radio.setStyleSheet("font-weight: 600;")
        what = label(summary[:1].upper() + summary[1:], wrap=True)
        self.example = label(role="hint", wrap=True)
        grid.addWidget(badge, 0, 0, 2, 1, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.radio, 0, 1)
        grid.addWidget(what, 1, 1)
        grid.addWidget(self.example, 2, 1)
        grid.setColumnStretch(1, 1)
        self.radio.toggled.connect(self._restyle)
        self._restyle(False)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.radio.setChecked(True)

    def _restyle(self, checked: bool) -> None:
        border = "#5b8def" if checked else "#3a4150"
        background = "#2c3a57" if checked else "#2b303b"
        self.setStyleSheet(
            f"KindCard {{ border: 1px solid {border}; border-radius: 6px; "
            f"background: {background}; }}"
        )


class RateBox(QDoubleSpinBox):
    """The learning rate: appearance tunes at 0.00001, shape at 0.0003, so the arrows step by
    a tenth of the value's own decade and the text drops trailing zeros."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(6)
        self.setRange(0.000001, 0.1)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:  # Qt's name
        return f"{value:.6f}".rstrip("0").rstrip(".")


def number_box(
    decimals: int, bounds: tuple[float, float], step: float, tip: str = ""
) -> QDoubleSpinBox:
    """A decimal field of the Advanced section."""
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(*bounds)
    box.setSingleStep(step)
    if tip:
        box.setToolTip(tip)
    return box


class AttributePicker(QWidget):
    """Kind cards, class word, reference description, name, preset and a collapsible
    advanced section."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(5)
        self.cards = {kind: KindCard(str(kind)) for kind in AttributeKind}
        self.all_three = KindCard(ALL_THREE, ALL_THREE_TITLE, ALL_THREE_SUMMARY)
        self.all_three.example.setText(ALL_THREE_EXAMPLE)
        self.kind_group = QButtonGroup(self)
        for card in (*self.cards.values(), self.all_three):
            self.kind_group.addButton(card.radio)
            layout.addWidget(card)
            card.radio.toggled.connect(assign_when_checked(vm, "kind", card.kind))

        form = QFormLayout()
        form.setContentsMargins(0, 4, 0, 0)
        form.setVerticalSpacing(5)
        self.class_word = QLineEdit()
        self.class_word.setToolTip("What the subject is; it helps the model separate it")
        self.caption = QLineEdit()
        self.caption.setPlaceholderText("e.g. a red {token} on a white background")
        self.caption.setToolTip(
            "Describe the reference, writing {token} where the chosen attribute's words would "
            "be (shape: 'a red striped {token}, on a white background'; style: 'a cat on a "
            "sofa, in {token} style'); for all three {shape}, {appearance} and {style} (e.g. "
            "'a {appearance} {shape}, {style} style, on a white background'). What you name "
            "here is not learnt into the attribute."
        )
        self.restore_caption = tool_button(
            "restore", "Put the suggested description back (it follows the picture and the kind)"
        )
        self.words_toggle = tool_button(
            "notes", "Describe the picture with the demo world's words", checkable=True
        )
        description = QHBoxLayout()
        description.setSpacing(2)
        description.addWidget(self.caption, 1)
        description.addWidget(self.restore_caption)
        description.addWidget(self.words_toggle)
        self.words = WorldWordPicker(vm)
        self.name = QLineEdit()
        self.name.setPlaceholderText("optional, e.g. Blue crackle glaze")
        self.word = label(role="hint", wrap=True)
        self.word.setToolTip(
            "The new attribute's own word: write it in prompts where the attribute goes, and "
            "attributes combine, each in its place (no other attribute of the project has it; "
            "the library can change it later)"
        )
        self.word.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preset = compact_combo(12)
        for key, preset in PRESETS.items():
            self.preset.addItem(f"{preset.name} — {preset.steps} steps", key)
        self.preset.addItem("Custom (see Advanced)", CUSTOM)
        form.addRow("Class word", self.class_word)
        form.addRow("Description", description)
        form.addRow(self.words)
        form.addRow("Name", self.name)
        form.addRow("Word", self.word)
        form.addRow("Quality", self.preset)
        layout.addLayout(form)

        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setText("Advanced")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        layout.addWidget(self.advanced_toggle)
        self.advanced = QWidget()
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(14, 0, 0, 0)
        self.steps = QSpinBox()
        self.steps.setRange(1, MAX_STEPS)
        self.steps.setSingleStep(50)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.learning_rate = RateBox()
        self.rank = QSpinBox()
        self.rank.setRange(1, 128)
        self.prior = number_box(
            2,
            (0.0, 10.0),
            0.25,
            "Prior preservation: how strongly tuning keeps what the model draws for the "
            "description without the placeholder, so the attribute leaves the rest of the "
            "prompt alone (0: off; slower when on)",
        )
        self.embedding_rate = number_box(
            4,
            (0.0, 0.1),
            0.0005,
            "Learning rate of the placeholder word itself, learned with the offsets so that "
            "the word stops meaning what the model knew it as (0: off)",
        )
        self.resolution = compact_combo()
        self.resolution.setToolTip(
            "The size the reference is tuned at; the model's own is best, smaller is faster"
        )
        advanced.addRow("Steps", self.steps)
        advanced.addRow("Seed", self.seed)
        advanced.addRow("Learning rate", self.learning_rate)
        advanced.addRow("Rank", self.rank)
        advanced.addRow("Keep prompt", self.prior)
        advanced.addRow("Word rate", self.embedding_rate)
        advanced.addRow("Resolution", self.resolution)
        layout.addWidget(self.advanced)
        layout.addStretch(1)  # the choices stay at the top of a tall column

        bind_to(vm, "kind", self._show_kind, self)
        bind(vm, "class_word", self.class_word)
        bind(vm, "caption", self.caption)
        bind_to(vm, "caption", lambda _: show_start(self.caption), self)
        self.restore_caption.clicked.connect(vm.restore_caption)
        bind(vm, "caption_edited", self.restore_caption, "enabled")
        bind(vm, "words_available", self.words_toggle, "visible")
        bind(vm, "words_open", self.words_toggle, "checked")
        bind_to(vm, "words_open", lambda _: self._show_words(), self)
        bind_to(vm, "words_available", lambda _: self._show_words(), self)
        bind(vm, "name", self.name)
        bind_to(vm, "name", lambda _: show_start(self.name), self)
        bind_to(vm, "word", lambda _: self._show_word(), self)
        bind_to(vm, "words_of_all", lambda _: self._show_word(), self)
        bind_to(vm, "kind", lambda _: self._show_word(), self)
        bind_combo(vm, "preset", self.preset)
        bind(vm, "advanced_open", self.advanced_toggle, "checked")
        bind_to(vm, "advanced_open", self._show_advanced, self)
        bind(vm, "steps", self.steps)
        bind(vm, "seed", self.seed)
        bind(vm, "learning_rate", self.learning_rate)
        bind(vm, "rank", self.rank)
        bind(vm, "prior", self.prior)
        bind(vm, "embedding_rate", self.embedding_rate)
        for field in (self.learning_rate, self.prior, self.embedding_rate):
            bind(vm, "own_rates", field, "enabled")
        bind_to(vm, "resolution_options", self._fill_resolutions, self)
        bind_combo(vm, "resolution", self.resolution)
        bind_to(vm, "running", lambda running: self.setEnabled(not running), self)

    def show_examples(self, examples: PromptExamples) -> None:
        """Examples of each kind and of class words that fit the model in use."""
        self.class_word.setPlaceholderText(f"optional, e.g. {examples.class_words}")
        for kind, card in self.cards.items():
            card.example.setText(examples.kinds[kind])

    def _show_word(self) -> None:
        if self.vm.kind == ALL_THREE:
            words = " · ".join(
                f"{kind} <b style='color:#e8ecf3'>{html.escape(word)}</b>"
                for kind, word in self.vm.words_of_all
            )
            self.word.setText(f"{words} — write each where its attribute goes" if words else "")
            return
        word = self.vm.word
        shown = html.escape(word)
        self.word.setText(
            f"<b style='color:#e8ecf3'>{shown}</b> — write it in prompts where the attribute goes"
            if word
            else ""
        )

    def _show_kind(self, kind: str) -> None:
        card = self.all_three if kind == ALL_THREE else self.cards.get(AttributeKind(kind))
        if card is not None and not card.radio.isChecked():
            card.radio.setChecked(True)

    def _fill_resolutions(self, options: tuple[tuple[str, str], ...]) -> None:
        blocker = QSignalBlocker(self.resolution)
        self.resolution.clear()
        for text, value in options:
            self.resolution.addItem(text, value)
        self.resolution.setCurrentIndex(max(0, self.resolution.findData(self.vm.resolution)))
        del blocker

    def _show_words(self) -> None:
        self.words.setVisible(self.vm.words_available and self.vm.words_open)

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setIcon(icon("chevron-down" if shown else "chevron-right"))
