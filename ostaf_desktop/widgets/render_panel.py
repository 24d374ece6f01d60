"""Rendering: prompt, negative prompt, seed with dice, size, sampler, steps; one λ slider per
ticked attribute with a live low-step preview; and Render for full-quality images."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ostaf.method.words import replace_word
from ostaf_desktop.binding import bind, bind_combo, bind_plain_text, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.prompt_examples import PromptExamples
from ostaf_desktop.qt_images import display_pixmap
from ostaf_desktop.viewmodels.library import AppliedEntry, LibraryViewModel
from ostaf_desktop.viewmodels.rendering import MAX_SEED, RenderViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.widgets.intensity_slider import IntensitySlider
from ostaf_desktop.widgets.layout import (
    Section,
    compact_combo,
    label,
    sampling_controls,
    schedule_control,
    tool_button,
)


class PreviewImage(QWidget):
    """The λ preview: the image fitted, square, into whatever size the layout gives
    (nearest-neighbour when enlarging), painted; "λ preview" while there is none.

    Its size hint is fixed. A hint that followed the scaled image (a QLabel's pixmap) fed back
    into the scrolling column: a wider column gave a taller preview, a taller preview needed the
    scroll bar, the bar made the column narrower, and so on: Qt's resize recursion never ended
    and the app died of a stack overflow while the window was being resized."""

    HINT = QSize(120, 120)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._scaled: QPixmap | None = None
        self.setMinimumSize(self.HINT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return self.HINT

    @property
    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image, self._scaled = image, None
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor("#323846"))
        painter.setBrush(QColor("#1a1d23"))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        if self._image is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "λ preview")
            return
        side = min(self.width(), self.height()) - 4
        if self._scaled is None or max(self._scaled.width(), self._scaled.height()) != side:
            self._scaled = display_pixmap(self._image, side, side)
        if not self._scaled.isNull():
            corner = self.rect().center() - self._scaled.rect().center()
            painter.drawPixmap(corner, self._scaled)


class RenderPanel(Section):
    """The prompt form, the applied attributes' λ sliders, the preview and Render."""

    def __init__(
        self,
        vm: RenderViewModel,
        library: LibraryViewModel,
        words: WordsViewModel,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Render", parent)
        self.vm = vm
        self.library = library
        self.words = words
        self._examples: PromptExamples | None = None
        self.prompt = QPlainTextEdit()
        self.prompt.setFixedHeight(58)
        self.negative = QPlainTextEdit()
        self.negative.setFixedHeight(36)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.dice = tool_button("dice", "Random seed (Ctrl+D)")
        self.size_combo = compact_combo()
        self.sampler, self.steps, self.guidance = sampling_controls()
        self.schedule = schedule_control()
        self.count = QSpinBox()
        self.count.setRange(1, 16)
        self.count.setSuffix(" image(s)")

        form = QFormLayout()
        form.setVerticalSpacing(5)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        steps_row = QHBoxLayout()  # short rows: the column stays narrow on a small screen
        steps_row.addWidget(self.steps, 1)
        steps_row.addWidget(label("CFG"))
        steps_row.addWidget(self.guidance, 1)
        form.addRow("Seed", seed_row)
        form.addRow("Size", self.size_combo)
        form.addRow("Sampler", self.sampler)
        form.addRow("Schedule", self.schedule)
        form.addRow("Steps", steps_row)
        form.addRow("Count", self.count)

        self.sliders_box = QVBoxLayout()
        self.sliders_box.setSpacing(2)
        self.no_attributes = label(
            "Tick attributes in the library to apply them", "hint", wrap=True
        )
        # Two ticked attributes with one word: said in one line, fixed in one click.
        self.clash = label(role="warning", wrap=True)
        self.clash.setTextFormat(Qt.TextFormat.PlainText)
        self.clash_fix = QPushButton()
        self.clash_fix.setToolTip(
            "Give it the next free word; its learned word moves with it (at λ 1 the new word "
            "renders as the old one did)"
        )
        self.preview = PreviewImage()
        self.caption = label(role="hint", wrap=True)
        # Whole sentences that say what to change: wrapped, never cut off.
        self.warnings = label(role="warning", wrap=True)
        self.warnings.setTextFormat(Qt.TextFormat.PlainText)  # attribute names are the user's
        self.warnings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.render_button = QPushButton(icon("render"), "Render")
        self.render_button.setProperty("role", "primary")
        self.render_button.setToolTip("Render full-quality images into the results strip (Ctrl+R)")
        self.render_progress = QProgressBar()
        self.render_progress.setFormat("%v / %m")
        self.render_hint = label(role="hint", wrap=True)

        self.body.addWidget(self.prompt)
        self.body.addWidget(self.negative)
        self.body.addLayout(form)
        self.body.addWidget(label("Applied attributes", "title"))
        self.body.addWidget(self.no_attributes)
        self.body.addLayout(self.sliders_box)
        self.body.addWidget(self.clash)
        self.body.addWidget(self.clash_fix)
        self.body.addWidget(self.preview, 1)
        self.body.addWidget(self.caption)
        self.body.addWidget(self.warnings)
        self.body.addWidget(self.render_button)
        self.body.addWidget(self.render_progress)
        self.body.addWidget(self.render_hint)

        self.dice.clicked.connect(vm.roll_seed)
        self.clash_fix.clicked.connect(lambda: words.give_own_word())
        bind(words, "clash", self.clash, "text")
        bind(words, "clash", self.clash, "visible", convert=bool)
        bind(words, "clash_fix", self.clash_fix, "text")
        bind(words, "clash", self.clash_fix, "visible", convert=bool)
        bind(words, "renaming", self.clash_fix, "enabled", convert=lambda busy: not busy)
        bind_to(library, "rows", lambda _: self._show_sliders(library.applied), self)
        bind_to(words, "next_word", lambda _: self._show_placeholder(), self)
        self.render_button.clicked.connect(vm.render)
        bind_plain_text(vm, "prompt", self.prompt)
        bind_plain_text(vm, "negative_prompt", self.negative)
        bind(vm, "seed", self.seed)
        bind_to(vm, "size_options", self._fill_sizes, self)
        bind_combo(vm, "size", self.size_combo)
        bind_combo(vm, "sampler", self.sampler)
        bind_combo(vm, "schedule", self.schedule)
        bind_to(vm, "sampler", lambda s: self.schedule.setEnabled(s != "ddim"), self)
        bind(vm, "steps", self.steps)
        bind(vm, "guidance", self.guidance)
        bind(vm, "count", self.count)
        bind_to(vm, "preview_image", self.preview.set_image, self)
        bind(vm, "preview_caption", self.caption, "text")
        bind(vm, "warnings", self.warnings, "text")
        bind(vm, "warnings", self.warnings, "visible", convert=bool)
        bind(vm, "can_render", self.render_button, "enabled")
        bind(vm, "render_hint", self.render_hint, "text")
        bind(vm, "rendering", self.render_progress, "visible")
        bind(vm, "render_total", self.render_progress, "maximum", convert=lambda t: max(1, t))
        bind(vm, "render_step", self.render_progress, "value")
        bind_to(vm, "preview_pending", self._show_pending, self)
        bind_to(library, "applied", self._show_sliders, self)

    def show_examples(self, examples: PromptExamples) -> None:
        """Example prompts the model in use can draw."""
        self._examples = examples
        self._show_placeholder()
        self.negative.setPlaceholderText(f"negative prompt (optional), e.g. {examples.negative}")

    def _show_placeholder(self) -> None:
        """The example prompt, written with the first ticked attribute's word (else the word
        the next attribute gets)."""
        examples = self._examples
        if examples is None:
            return
        rows = [self.library.row(a.id) for a in self.library.applied]
        words = [row.token for row in rows if row is not None]
        word = words[0] if words else (self.words.next_word or examples.token)
        prompt = replace_word(examples.prompt, examples.token, word)
        self.prompt.setPlaceholderText(
            f"e.g. {prompt} — '{word}' names the attribute (click a word below to insert it); "
            "empty: the attribute's own prompt"
        )

    def _fill_sizes(self, options: tuple[tuple[str, str], ...]) -> None:
        current = self.vm.size
        self.size_combo.blockSignals(True)
        self.size_combo.clear()
        for text, value in options:
            self.size_combo.addItem(text, value)
        index = self.size_combo.findData(current)
        self.size_combo.setCurrentIndex(max(0, index))
        self.size_combo.blockSignals(False)

    def _show_pending(self, pending: bool) -> None:
        self.caption.setProperty("role", "warning" if pending else "hint")
        self.caption.setText("Rendering a quick preview…" if pending else self.vm.preview_caption)
        self.caption.style().polish(self.caption)

    def _show_sliders(self, applied: tuple[AppliedEntry, ...]) -> None:
        existing = {slider.objectName(): slider for slider in self.sliders()}
        wanted = {entry.id for entry in applied}
        for attribute_id, slider in existing.items():
            if attribute_id not in wanted:
                self.sliders_box.removeWidget(slider)
                slider.setParent(None)
                slider.deleteLater()
        for entry in applied:
            found = existing.get(entry.id)
            if found is None:
                slider = IntensitySlider(entry.name, entry.intensity, parent=self)
                slider.setObjectName(entry.id)
                slider.intensity_changed.connect(
                    lambda value, i=entry.id: self.library.set_intensity(i, value)
                )
                slider.word_clicked.connect(self.insert_word)
                self.sliders_box.addWidget(slider)
            else:
                slider = found
                if abs(slider.intensity - entry.intensity) > 1e-6:
                    slider.set_intensity(entry.intensity)
            slider.name.setText(entry.name)
            row = self.library.row(entry.id)
            slider.set_word(row.token if row is not None else "")
        sliders = [s for s in self.sliders() if s.objectName() in wanted]
        width = max((s.name_width() for s in sliders), default=0)
        for slider in sliders:  # one name column: the sliders line up
            slider.set_name_width(width)
        self.no_attributes.setVisible(not applied)
        self._show_placeholder()

    def insert_word(self, word: str) -> None:
        """Write `word` into the prompt at the cursor (spaced from its neighbours)."""
        cursor = self.prompt.textCursor()
        position = self.vm.insert_word(word, cursor.position())
        cursor.setPosition(min(position, len(self.prompt.toPlainText())))
        self.prompt.setTextCursor(cursor)
        self.prompt.setFocus()

    def sliders(self) -> list[IntensitySlider]:
        """The λ sliders, in the order the attributes were ticked."""
        found = []
        for index in range(self.sliders_box.count()):
            item = self.sliders_box.itemAt(index)
            widget = item.widget() if item is not None else None
            if isinstance(widget, IntensitySlider):
                found.append(widget)
        return found
