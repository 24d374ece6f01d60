"""The selected attribute's details under the library list: what it is, and its name, tags,
default λ and notes, edited in place and saved into the file."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind, bind_plain_text, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.attribute_editor import AttributeEditorViewModel
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.widgets.layout import label, show_start


def describe(row: AttributeRow) -> str:
    """The facts line above the fields (rich text)."""
    loss = f" · loss {row.final_loss:.3f}" if row.final_loss is not None else ""
    return f"<b>{row.kind.title()}</b> · {row.steps} steps{loss}"


def provenance(row: AttributeRow) -> str:
    """Where the attribute came from (the facts line's tooltip)."""
    source = html.escape(row.reference_name or "an image")
    created = row.created_at.replace("T", " ").rstrip("Z")
    return f"From {source} on {html.escape(row.base_model)}<br>created {created} UTC"


class AttributeDetails(QWidget):
    """Facts about the selected attribute and its editable name, tags, default λ and notes."""

    def __init__(
        self,
        library: LibraryViewModel,
        editor: AttributeEditorViewModel,
        words: WordsViewModel,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.editor = editor
        self.words = words
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 0)
        layout.setSpacing(4)
        self.facts = label(role="hint")
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name")
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("e.g. glaze, ceramic")
        self.tags.setToolTip("Tags, separated by commas; search for one with #tag")
        self.default_lambda = QDoubleSpinBox()
        self.default_lambda.setRange(0.0, 2.0)
        self.default_lambda.setSingleStep(0.05)
        self.default_lambda.setDecimals(2)
        self.default_lambda.setToolTip("The λ this attribute starts at when ticked")
        self.keep_lambda = QPushButton()
        self.keep_lambda.setToolTip("Make the λ set in the Render panel this attribute's default")
        self.word = label(role="value")
        self.word.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.word.setToolTip("The attribute's own word: write it in prompts where it goes")
        self.change_word = QPushButton("Change…")
        self.change_word.setToolTip(
            "Give the attribute another word (one token, no other attribute of the project's): "
            "its learned word moves with it, so at λ 1 the new word renders as the old one did"
        )
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes about this attribute…")
        self.notes.setFixedHeight(46)
        self.revert = QPushButton("Revert")
        self.revert.setToolTip("Drop the changes")
        self.save = QPushButton(icon("save"), "Save")
        self.save.setToolTip("Write name, tags, default λ and notes into the attribute file")

        form = QFormLayout()
        form.setVerticalSpacing(4)
        form.setHorizontalSpacing(6)
        lam_row = QHBoxLayout()
        lam_row.addWidget(self.default_lambda)
        lam_row.addWidget(self.keep_lambda, 1)
        word_row = QHBoxLayout()
        word_row.addWidget(self.word, 1)
        word_row.addWidget(self.change_word)
        form.addRow("Name", self.name)
        form.addRow("Word", word_row)
        form.addRow("Tags", self.tags)
        form.addRow("λ", lam_row)
        form.addRow("Notes", self.notes)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.revert)
        buttons.addWidget(self.save)
        layout.addWidget(self.facts)
        layout.addLayout(form)
        layout.addLayout(buttons)

        self.name.returnPressed.connect(editor.save)
        self.tags.returnPressed.connect(editor.save)
        self.save.clicked.connect(editor.save)
        self.revert.clicked.connect(editor.revert)
        self.keep_lambda.clicked.connect(self._keep_lambda)
        self.change_word.clicked.connect(self.ask_word)
        bind(words, "renaming", self.change_word, "enabled", convert=lambda busy: not busy)
        bind(editor, "name", self.name)
        bind_to(editor, "name", lambda _: show_start(self.name), self)
        bind(editor, "tags", self.tags)
        bind(editor, "default_lambda", self.default_lambda)
        bind_plain_text(editor, "notes", self.notes)
        bind(editor, "dirty", self.save, "enabled")
        bind(editor, "dirty", self.revert, "enabled")
        bind_to(editor, "editing_id", lambda _: self._show(), self)
        bind_to(library, "rows", lambda _: self._show(), self)
        bind_to(library, "applied", lambda _: self._update_keep_lambda(), self)

    def _show(self) -> None:
        row = self.library.row(self.editor.editing_id)
        self.setVisible(row is not None)
        if row is not None:
            self.facts.setText(describe(row))
            self.facts.setToolTip(provenance(row))
            self.word.setText(row.token)
        self._update_keep_lambda()

    def ask_word(self) -> None:
        """Ask for the selected attribute's new word (a free one is offered)."""
        row = self.library.row(self.editor.editing_id)
        if row is None:
            return
        word, ok = QInputDialog.getText(
            self,
            "Attribute word",
            f"A new word for '{row.name}' (now {row.token}), one no other attribute of the "
            "project has:",
            QLineEdit.EchoMode.Normal,
            self.words.suggestion(),
        )
        if ok and word.strip():
            self.words.change_word(row.id, word)

    def _current(self) -> float | None:
        return self.library.intensity(self.editor.editing_id)

    def _update_keep_lambda(self) -> None:
        row = self.library.row(self.editor.editing_id)
        current = self._current()
        differs = (
            row is not None and current is not None and abs(current - row.default_lambda) > 1e-6
        )
        self.keep_lambda.setVisible(differs)  # only offered when the slider moved away from it
        self.keep_lambda.setText(f"Keep λ {current:.2f}" if current is not None else "")

    def _keep_lambda(self) -> None:
        current = self._current()
        if current is not None:
            self.editor.keep_intensity(current)
