"""The library: the open project's attributes with reference thumbnail, name, kind, default λ
and tags; search and a kind filter; tick several to apply them together; the selected one's
details below. Attribute files dropped on the panel are imported."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QWidget,
)

from ostaf.method.regions import AttributeKind
from ostaf_desktop.binding import bind, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import qimage_from_data_url
from ostaf_desktop.viewmodels.attribute_editor import AttributeEditorViewModel
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel
from ostaf_desktop.viewmodels.words import WordsViewModel
from ostaf_desktop.widgets.attribute_details import AttributeDetails
from ostaf_desktop.widgets.layout import Section, label, tool_button
from ostaf_desktop.widgets.thumbnails import square_icon

THUMB = 44
ID_ROLE = Qt.ItemDataRole.UserRole
ATTRIBUTE_SUFFIX = ".safetensors"


def item_text(row: AttributeRow) -> str:
    tags = "  " + " ".join(f"#{t}" for t in row.tags) if row.tags else ""
    return f"{row.name}\n{row.kind} · {row.token} · λ {row.default_lambda:g}{tags}"


def attribute_icon(row: AttributeRow, side: int = THUMB) -> QIcon:
    return square_icon(qimage_from_data_url(row.thumbnail), side, icon(row.kind))


def menu_button(icon_name: str, tip: str) -> QToolButton:
    """A header button whose menu opens on click (the window fills the menu)."""
    button = tool_button(icon_name, tip)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
    return button


class LibraryPanel(Section):
    """The searchable attribute list with check boxes, and the selected attribute's details."""

    files_dropped = Signal(list)  # list[Path] of .safetensors files

    def __init__(
        self,
        vm: LibraryViewModel,
        editor: AttributeEditorViewModel,
        words: WordsViewModel,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Library", parent)
        self.vm = vm
        self.setAcceptDrops(True)
        self.import_button = self.add_header_button(menu_button("import", "Import attributes"))
        self.export_button = self.add_header_button(menu_button("export", "Export the attribute"))
        self.trash_button = self.add_header_button(tool_button("restore", "Trash: restore deleted"))
        self.rename_button = self.add_header_button(tool_button("rename", "Rename attribute (F2)"))
        self.delete_button = self.add_header_button(tool_button("delete", "Delete attribute (Del)"))
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search…")
        self.search.setToolTip(
            "Search names, tags, notes and reference names (Ctrl+F); #tag matches a tag exactly"
        )
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        search_row = QHBoxLayout()
        search_row.setSpacing(2)
        search_row.addWidget(self.search, 1)
        self.kind_buttons: dict[str, QToolButton] = {}
        for kind in AttributeKind:
            button = tool_button(str(kind), f"Show only {kind.value} attributes", checkable=True)
            button.toggled.connect(lambda on, k=str(kind): self._on_kind_toggled(k, on))
            self.kind_buttons[str(kind)] = button
            search_row.addWidget(button)
        self.empty = label(role="hint", wrap=True)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setToolTip("Tick attributes to apply them together; each gets its own λ")
        self.summary = label(role="hint")
        self.details = AttributeDetails(vm, editor, words)
        self.problems = label(role="warning", wrap=True)
        self.body.addLayout(search_row)
        self.body.addWidget(self.empty)
        self.body.addWidget(self.list, 1)
        self.body.addWidget(self.summary)
        self.body.addWidget(self.details)
        self.body.addWidget(self.problems)

        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current_changed)
        bind(vm, "search_text", self.search)
        bind_to(vm, "kind_filter", self._show_kind_filter, self)
        bind(vm, "filter_summary", self.summary, "text")
        bind_to(vm, "filter_summary", lambda text: self.summary.setVisible(bool(text)), self)
        bind_to(vm, "visible", lambda _: self._fill(), self)
        bind_to(vm, "applied", lambda _: self._sync_checks(), self)
        bind_to(vm, "selected_id", lambda _: self._show_selected(), self)
        bind_to(vm, "trashed", self._show_trash_count, self)
        bind_to(vm, "problems", self._show_problems, self)

    # -- filling -------------------------------------------------------------------------
    def _fill(self) -> None:
        blocker = QSignalBlocker(self.list)
        self.list.clear()
        applied = {a.id for a in self.vm.applied}
        for row in self.vm.visible:
            item = QListWidgetItem(attribute_icon(row), item_text(row))
            item.setData(ID_ROLE, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if row.id in applied else Qt.CheckState.Unchecked
            )
            tags = f"\ntags: {', '.join(row.tags)}" if row.tags else ""
            item.setToolTip(
                f"{row.name} — {row.kind}, written {row.token} in prompts, "
                f"default λ {row.default_lambda:g}{tags}"
            )
            self.list.addItem(item)
            if row.id == self.vm.selected_id:
                self.list.setCurrentItem(item)
        del blocker
        has_rows = bool(self.vm.rows)
        self.empty.setText(
            "No attribute matches the search."
            if has_rows
            else "No attributes yet. Open a reference image and press Tune, or import "
            "attribute files (Ctrl+I): they land here."
        )
        self.empty.setVisible(not self.vm.visible)
        self.list.setVisible(bool(self.vm.visible))
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
        for button in (self.rename_button, self.delete_button, self.export_button):
            button.setEnabled(row is not None)
        if row is None:
            return
        for index in range(self.list.count()):
            item = self.list.item(index)
            if item.data(ID_ROLE) == row.id and self.list.currentItem() is not item:
                blocker = QSignalBlocker(self.list)
                self.list.setCurrentItem(item)
                del blocker

    def _show_trash_count(self, trashed: tuple[AttributeRow, ...]) -> None:
        count = len(trashed)
        self.trash_button.setToolTip(
            f"Trash: {count} deleted attribute{'s' if count != 1 else ''} to restore"
            if count
            else "Trash: empty"
        )

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        self.problems.setVisible(bool(problems))
        self.problems.setText("Skipped unreadable files: " + "; ".join(problems))

    def _show_kind_filter(self, kind: str) -> None:
        for name, button in self.kind_buttons.items():
            blocker = QSignalBlocker(button)
            button.setChecked(name == kind)
            del blocker

    # -- user actions --------------------------------------------------------------------
    def _on_kind_toggled(self, kind: str, on: bool) -> None:
        if on:
            self.vm.kind_filter = kind
        elif self.vm.kind_filter == kind:
            self.vm.kind_filter = ""

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.vm.set_applied(str(item.data(ID_ROLE)), item.checkState() == Qt.CheckState.Checked)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        if current is not None:
            self.vm.selected_id = str(current.data(ID_ROLE))

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_files(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = _dropped_files(event)
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)


def _dropped_files(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if p.suffix.lower() == ATTRIBUTE_SUFFIX]
