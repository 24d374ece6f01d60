"""The project's trash: deleted attributes, newest first, each restorable or deleted for good
(after a confirmation)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QDialogButtonBox,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.library import AttributeRow, LibraryViewModel
from ostaf_desktop.widgets.layout import confirm, label
from ostaf_desktop.widgets.library_panel import ID_ROLE, THUMB, attribute_icon
from ostaf_desktop.widgets.screen_fit import ScreenFittedDialog


class TrashDialog(ScreenFittedDialog):
    """Lists `library.trashed`; Restore brings the selected attribute back."""

    def __init__(self, library: LibraryViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.setWindowTitle("Trash")
        self.setMinimumSize(420, 360)
        layout = QVBoxLayout(self)
        self.intro = label(
            "Deleted attributes stay in the project's trash until you delete them for good.",
            "hint",
            wrap=True,
        )
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.empty = label("The trash is empty.", "hint")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.restore = QPushButton(icon("restore"), "Restore")
        self.restore.setToolTip("Put the selected attribute back into the library")
        self.buttons.addButton(self.restore, QDialogButtonBox.ButtonRole.ActionRole)
        self.purge = QPushButton(icon("delete"), "Delete permanently")
        self.purge.setToolTip("Delete the selected attribute's file for good (asks first)")
        self.buttons.addButton(self.purge, QDialogButtonBox.ButtonRole.ActionRole)
        self.empty_all = QPushButton("Empty trash")
        self.empty_all.setToolTip("Delete every attribute in the trash for good (asks first)")
        self.buttons.addButton(self.empty_all, QDialogButtonBox.ButtonRole.ActionRole)
        layout.addWidget(self.intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.buttons)

        self.buttons.rejected.connect(self.reject)
        self.restore.clicked.connect(self.restore_selected)
        self.purge.clicked.connect(self.purge_selected)
        self.empty_all.clicked.connect(self.empty_trash)
        self.list.itemDoubleClicked.connect(lambda _: self.restore_selected())
        self.list.currentItemChanged.connect(lambda *_: self._update_button())
        bind_to(library, "trashed", self._fill, self)

    def _fill(self, rows: tuple[AttributeRow, ...]) -> None:
        self.list.clear()
        for row in rows:
            created = row.created_at.replace("T", " ").rstrip("Z")
            item = QListWidgetItem(
                attribute_icon(row), f"{row.name}\n{row.kind} · created {created} UTC"
            )
            item.setData(ID_ROLE, row.id)
            self.list.addItem(item)
        if rows:
            self.list.setCurrentRow(0)
        self.list.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        self._update_button()

    def _update_button(self) -> None:
        selected = self.list.currentItem() is not None
        self.restore.setEnabled(selected)
        self.purge.setEnabled(selected)
        self.empty_all.setEnabled(self.list.count() > 0)

    def restore_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.library.restore(str(item.data(ID_ROLE)))

    def purge_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        name = item.text().splitlines()[0]
        if confirm(self, "Delete permanently", f"Delete '{name}' for good? This cannot be undone."):
            self.library.purge(str(item.data(ID_ROLE)))

    def empty_trash(self) -> None:
        count = self.list.count()
        if count and confirm(
            self,
            "Empty trash",
            f"Delete all {count} attribute(s) in the trash for good? This cannot be undone.",
        ):
            self.library.empty_trash()
