"""Import from another project: choose the project, tick its attributes, copy them in."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, QSize, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind, bind_combo, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.attribute_transfer import ProjectImportViewModel
from ostaf_desktop.viewmodels.library import AttributeRow
from ostaf_desktop.widgets.layout import label
from ostaf_desktop.widgets.library_panel import ID_ROLE, THUMB, attribute_icon, item_text
from ostaf_desktop.widgets.screen_fit import ScreenFittedDialog


class ProjectImportDialog(ScreenFittedDialog):
    """A small chooser over a ProjectImportViewModel; Import copies the ticked attributes."""

    def __init__(self, vm: ProjectImportViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setWindowTitle("Import from another project")
        self.setMinimumSize(440, 420)
        layout = QVBoxLayout(self)
        self.source = QComboBox()
        for slug, name in vm.sources:
            self.source.addItem(icon("folder"), name, slug)
        form = QFormLayout()
        form.addRow("Project", self.source)
        self.list = QListWidget()
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.hint = label(role="hint", wrap=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = QPushButton(icon("import"), "Import")
        self.import_button.setProperty("role", "primary")
        self.buttons.addButton(self.import_button, QDialogButtonBox.ButtonRole.AcceptRole)
        layout.addLayout(form)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.buttons)

        self.buttons.rejected.connect(self.reject)
        self.import_button.clicked.connect(self._import)
        self.list.itemChanged.connect(self._on_item_changed)
        bind_combo(vm, "source_slug", self.source)
        bind_to(vm, "rows", self._fill, self)
        bind_to(vm, "checked", lambda _: self._sync_checks(), self)
        bind(vm, "hint", self.hint, "text")
        bind(vm, "can_import", self.import_button, "enabled")
        self.source.setEnabled(bool(vm.sources))

    def _fill(self, rows: tuple[AttributeRow, ...]) -> None:
        blocker = QSignalBlocker(self.list)
        self.list.clear()
        for row in rows:
            item = QListWidgetItem(attribute_icon(row), item_text(row))
            item.setData(ID_ROLE, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.list.addItem(item)
        del blocker
        self._sync_checks()

    def _sync_checks(self) -> None:
        blocker = QSignalBlocker(self.list)
        for index in range(self.list.count()):
            item = self.list.item(index)
            on = item.data(ID_ROLE) in self.vm.checked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        del blocker

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.vm.set_checked(str(item.data(ID_ROLE)), item.checkState() == Qt.CheckState.Checked)

    def _import(self) -> None:
        if self.vm.import_checked():
            self.accept()
