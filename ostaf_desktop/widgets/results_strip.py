"""The results strip along the bottom: rendered images, newest first; save a copy, open it
in the system viewer, or show its folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QIcon
from PySide6.QtWidgets import (
    QFileDialog,
    QListView,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.qt_images import display_pixmap
from ostaf_desktop.viewmodels.results import ResultItem, ResultsViewModel
from ostaf_desktop.widgets.layout import Section, label, tool_button

THUMB = 96


class ResultsStrip(Section):
    """A horizontal strip of rendered images."""

    def __init__(self, vm: ResultsViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Results", parent)
        self.vm = vm
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
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.setFixedHeight(THUMB + 36)
        self.list.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = label("Rendered images appear here: press Render (Ctrl+R)", "hint")
        self.header.insertWidget(1, self.empty)
        self.body.addWidget(self.list)

        self.list.currentRowChanged.connect(lambda index: setattr(vm, "selected", index))
        self.list.itemDoubleClicked.connect(lambda _: self.open_current())
        self.save_button.clicked.connect(self.save_current)
        self.open_button.clicked.connect(self.open_current)
        self.folder_button.clicked.connect(self.show_folder)
        bind_to(vm, "items", self._fill, self)
        bind_to(vm, "selected", self._select, self)

    def _fill(self, items: tuple[ResultItem, ...]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for item in items:
            entry = QListWidgetItem(QIcon(display_pixmap(item.image, THUMB, THUMB)), item.caption)
            entry.setToolTip(item.parameters or (str(item.path) if item.path else item.caption))
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

    def open_current(self) -> None:
        item = self.vm.current
        if item is not None and item.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path)))

    def show_folder(self) -> None:
        item = self.vm.current
        if item is not None and item.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(item.path.parent)))
