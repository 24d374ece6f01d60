"""The results strip along the bottom: rendered images, newest first; save a copy, open it
in the system viewer, show its folder, or re-use its settings in the Render panel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QFileDialog,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.qt_images import display_pixmap
from ostaf_desktop.viewmodels.results import ResultItem, ResultsViewModel
from ostaf_desktop.widgets.layout import Section, label, tool_button

THUMB = 72


class ResultsStrip(Section):
    """A horizontal strip of rendered images."""

    reuse_settings = Signal(Path)  # the selected result's file: fill the Render panel from it

    def __init__(self, vm: ResultsViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Results", parent)
        self.vm = vm
        self.reuse_button = self.add_header_button(
            tool_button("image-settings", "Use its settings in the Render panel (Ctrl+Shift+R)")
        )
        self.save_button = self.add_header_button(tool_button("save", "Save a copy… (Ctrl+S)"))
        self.open_button = self.add_header_button(
            tool_button("open-external", "Open in the image viewer")
        )
        self.folder_button = self.add_header_button(tool_button("folder", "Show the folder"))
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(4)
        self.list.setGridSize(QSize(THUMB + 44, THUMB + 28))  # long file names cannot widen a cell
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        # Room for a cell and the scroll bar that appears once the strip overflows: without
        # it the bar covers the captions.
        frame = 2 * self.list.frameWidth()
        bar = self.list.horizontalScrollBar().sizeHint().height()
        self.list.setFixedHeight(self.list.gridSize().height() + bar + frame + 2)
        self.list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.empty = label("Rendered images appear here: press Render (Ctrl+R)", "hint")
        self.header.insertWidget(1, self.empty)
        self.body.addWidget(self.list)

        self.list.currentRowChanged.connect(lambda index: setattr(vm, "selected", index))
        self.list.itemDoubleClicked.connect(lambda _: self.open_current())
        self.save_button.clicked.connect(self.save_current)
        self.open_button.clicked.connect(self.open_current)
        self.folder_button.clicked.connect(self.show_folder)
        self.reuse_button.clicked.connect(self.reuse_current)
        self.list.customContextMenuRequested.connect(self._show_menu)
        bind_to(vm, "items", self._fill, self)
        bind_to(vm, "selected", self._select, self)

    def _fill(self, items: tuple[ResultItem, ...]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for item in items:
            entry = QListWidgetItem(QIcon(display_pixmap(item.image, THUMB, THUMB)), item.caption)
            where = str(item.path) if item.path else item.caption
            entry.setToolTip(f"{where}\n\n{item.parameters}" if item.parameters else where)
            self.list.addItem(entry)
        self.list.blockSignals(False)
        self.empty.setVisible(not items)
        self._select(self.vm.selected)

    def _select(self, index: int) -> None:
        if self.list.currentRow() != index:
            self.list.setCurrentRow(index)
        has = self.vm.current is not None
        has_file = has and self.vm.current is not None and self.vm.current.path is not None
        self.save_button.setEnabled(has)
        self.reuse_button.setEnabled(has_file)
        self.open_button.setEnabled(has_file)
        self.folder_button.setEnabled(has_file)

    def save_current(self) -> None:
        item = self.vm.current
        if item is None:
            return
        suggested = item.path.name if item.path is not None else "render.png"
        target, _ = QFileDialog.getSaveFileName(
            self, "Save a copy", suggested, "PNG images (*.png)"
        )
        if target:
            self.vm.save_copy(self.vm.selected, Path(target))

    def context_menu(self) -> QMenu:
        """The selected result's actions (shown on right-click)."""
        menu = QMenu(self)
        has_file = self.vm.current is not None and self.vm.current.path is not None
        for text, icon_name, slot, enabled in (
            ("Use its settings (Render panel)", "image-settings", self.reuse_current, has_file),
            ("Save a copy…", "save", self.save_current, self.vm.current is not None),
            ("Open in the image viewer", "open-external", self.open_current, has_file),
            ("Show the folder", "folder", self.show_folder, has_file),
        ):
            action = menu.addAction(icon(icon_name), text)
            action.triggered.connect(slot)
            action.setEnabled(enabled)
        return menu

    def _show_menu(self, position: QPoint) -> None:
        item = self.list.itemAt(position)
        if item is not None:
            self.list.setCurrentItem(item)
            menu = self.context_menu()
            menu.exec(self.list.viewport().mapToGlobal(position))
            menu.deleteLater()

    def reuse_current(self) -> None:
        item = self.vm.current
        if item is not None and item.path is not None:
            self.reuse_settings.emit(item.path)

    def open_current(self) -> None:
        item = self.vm.current
        if item is not None and item.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path)))

    def show_folder(self) -> None:
        item = self.vm.current
        if item is not None and item.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path.parent)))
