"""The library: the open project's attributes with reference thumbnail, name, kind and
default λ; tick several to apply them together; rename, delete and notes."""

from __future__ import annotations

import html

from PySide6.QtCore import QSignalBlocker, QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import qimage_from_data_url
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel
from ostaf_desktop.widgets.layout import Section, label, tool_button
from ostaf_desktop.widgets.thumbnails import square_icon

THUMB = 44
ID_ROLE = Qt.ItemDataRole.UserRole


class LibraryPanel(Section):
    """The attribute list with check boxes, and the selected attribute's details and notes."""

    def __init__(self, vm: LibraryViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Library", parent)
        self.vm = vm
        self.rename_button = self.add_header_button(tool_button("rename", "Rename attribute (F2)"))
        self.delete_button = self.add_header_button(tool_button("delete", "Delete attribute"))
        self.empty = label(
            "No attributes yet. Open a reference image and press Tune: the result lands here.",
            "hint",
            wrap=True,
        )
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("Tick attributes to apply them together; each gets its own λ")
        self.details = label(role="hint", wrap=True)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("Notes about this attribute…")
        self.notes.setMaximumHeight(64)
        self.save_notes = QPushButton(icon("notes"), "Save notes")
        self.save_notes.setEnabled(False)
        self.keep_lambda = QPushButton()
        self.keep_lambda.setToolTip("Make the λ set in the Render panel this attribute's default")
        self.problems = label(role="warning", wrap=True)
        notes_row = QHBoxLayout()
        notes_row.addStretch(1)
        notes_row.addWidget(self.save_notes)
        for widget in (self.empty, self.list, self.details, self.keep_lambda, self.notes):
            self.body.addWidget(widget, 1 if widget is self.list else 0)
        self.body.addLayout(notes_row)
        self.body.addWidget(self.problems)

        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.rename_button.clicked.connect(self.rename)
        self.delete_button.clicked.connect(self.delete)
        self.notes.textChanged.connect(self._on_notes_edited)
        self.save_notes.clicked.connect(self._save_notes)
        self.keep_lambda.clicked.connect(self._keep_lambda)
        bind_to(vm, "rows", lambda _: self._fill(), self)
        bind_to(vm, "applied", lambda _: self._sync_checks(), self)
        bind_to(vm, "applied", lambda _: self._update_keep_lambda(), self)
        bind_to(vm, "selected_id", lambda _: self._show_selected(), self)
        bind_to(vm, "problems", self._show_problems, self)

    # -- filling -------------------------------------------------------------------------
    def _fill(self) -> None:
        blocker = QSignalBlocker(self.list)
        self.list.clear()
        applied = {a.id for a in self.vm.applied}
        for row in self.vm.rows:
            item = QListWidgetItem(
                square_icon(qimage_from_data_url(row.thumbnail), THUMB, icon(row.kind)),
                f"{row.name}\n{row.kind} · λ {row.default_lambda:g}",
            )
            item.setData(ID_ROLE, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if row.id in applied else Qt.CheckState.Unchecked
            )
            item.setToolTip(f"{row.name} — {row.kind}, default λ {row.default_lambda:g}")
            self.list.addItem(item)
            if row.id == self.vm.selected_id:
                self.list.setCurrentItem(item)
        del blocker
        self.empty.setVisible(not self.vm.rows)
        self.list.setVisible(bool(self.vm.rows))
        self._show_selected()

    def _sync_checks(self) -> None:
        applied = {a.id for a in self.vm.applied}
        blocker = QSignalBlocker(self.list)
        for index in range(self.list.count()):
            item = self.list.item(index)
            state = (
                Qt.CheckState.Checked if item.data(ID_ROLE) in applied else Qt.CheckState.Unchecked
            )
            if item.checkState() != state:
                item.setCheckState(state)
        del blocker

    def _show_selected(self) -> None:
        row = self.vm.selected
        for widget in (self.details, self.notes, self.save_notes):
            widget.setVisible(row is not None)
        self.rename_button.setEnabled(row is not None)
        self.delete_button.setEnabled(row is not None)
        if row is None:
            return
        for index in range(self.list.count()):
            item = self.list.item(index)
            if item.data(ID_ROLE) == row.id and self.list.currentItem() is not item:
                blocker = QSignalBlocker(self.list)
                self.list.setCurrentItem(item)
                del blocker
        self.details.setText(describe(row))
        blocker = QSignalBlocker(self.notes)
        self.notes.setPlainText(row.notes)
        del blocker
        self.save_notes.setEnabled(False)
        self._update_keep_lambda()

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        self.problems.setVisible(bool(problems))
        self.problems.setText("Skipped unreadable files: " + "; ".join(problems))

    # -- user actions --------------------------------------------------------------------
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.vm.set_applied(str(item.data(ID_ROLE)), item.checkState() == Qt.CheckState.Checked)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is not None:
            self.vm.selected_id = str(current.data(ID_ROLE))

    def _on_notes_edited(self) -> None:
        row = self.vm.selected
        self.save_notes.setEnabled(row is not None and self.notes.toPlainText() != row.notes)

    def _update_keep_lambda(self) -> None:
        row = self.vm.selected
        current = self.vm.intensity(row.id) if row is not None else None
        differs = (
            row is not None and current is not None and abs(current - row.default_lambda) > 1e-6
        )
        self.keep_lambda.setVisible(differs)  # only offered when the slider moved away from it
        self.keep_lambda.setText(f"Keep λ {current:.2f} as default" if current is not None else "")

    def _keep_lambda(self) -> None:
        row = self.vm.selected
        current = self.vm.intensity(row.id) if row is not None else None
        if row is not None and current is not None:
            self.vm.set_default_lambda(row.id, current)

    def _save_notes(self) -> None:
        if self.vm.selected is not None:
            self.vm.set_notes(self.vm.selected.id, self.notes.toPlainText())

    def rename(self) -> None:
        row = self.vm.selected
        if row is None:
            return
        name, ok = QInputDialog.getText(self, "Rename attribute", "New name:", text=row.name)
        if ok and name.strip() and name != row.name:
            self.vm.rename(row.id, name)

    def delete(self) -> None:
        row = self.vm.selected
        if row is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete attribute",
            f"Move '{row.name}' to the project's trash folder?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.vm.delete(row.id)


def describe(row: AttributeRow) -> str:
    """The details line under the list (rich text, user strings escaped)."""
    loss = f" · final loss {row.final_loss:.3f}" if row.final_loss is not None else ""
    source = html.escape(row.reference_name or "an image")
    return (
        f"<b>{row.kind.title()}</b> · default λ {row.default_lambda:g} · {row.steps} steps{loss}"
        f"<br>from {source} on {html.escape(row.base_model)}"
        f"<br>created {row.created_at.replace('T', ' ').rstrip('Z')} UTC"
    )
