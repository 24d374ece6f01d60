"""The library's actions that need a dialog first: import files or from another project,
export a file or a LoRA, rename, delete after confirming, and the trash."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QWidget

from ostaf_desktop.viewmodels.attribute_transfer import ATTRIBUTE_FILTER, ProjectImportViewModel
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.layout import confirm
from ostaf_desktop.widgets.lora_dialog import LoraExportDialog
from ostaf_desktop.widgets.project_import_dialog import ProjectImportDialog
from ostaf_desktop.widgets.trash_dialog import TrashDialog


class LibraryActions:
    """Opens the library's dialogs over `window` and hands the answers to the view-models."""

    def __init__(self, vm: MainViewModel, window: QWidget) -> None:
        self.vm = vm
        self.window = window
        self.dialog: QDialog | None = None  # the one open (for tests and screenshots)

    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self.window, "Import attribute files", "", ATTRIBUTE_FILTER
        )
        if files:
            self.vm.transfer.import_files([Path(f) for f in files])

    def import_from_project(self) -> None:
        if self.vm.projects.current is None:
            return
        chooser = ProjectImportViewModel(self.vm.projects, self.vm.transfer)
        self._open(ProjectImportDialog(chooser, self.window))
        chooser.setParent(self.dialog)

    def export_file(self) -> None:
        row = self.vm.library.selected
        if row is None:
            return
        folder = QFileDialog.getExistingDirectory(self.window, f"Export '{row.name}' to a folder")
        if folder:
            self.vm.transfer.export_file(row.id, Path(folder))

    def export_lora(self) -> None:
        row = self.vm.library.selected
        if row is not None and (self.vm.lora.running or self.vm.lora.prepare(row.id)):
            self._open(LoraExportDialog(self.vm.lora, self.window))

    def show_trash(self) -> None:
        if self.vm.projects.current is not None:
            self._open(TrashDialog(self.vm.library, self.window))

    def rename(self) -> None:
        row = self.vm.library.selected
        if row is None:
            return
        name, ok = QInputDialog.getText(self.window, "Rename attribute", "New name:", text=row.name)
        if ok and name.strip() and name != row.name:
            self.vm.library.rename(row.id, name)

    def delete(self) -> None:
        row = self.vm.library.selected
        if row is None:
            return
        if confirm(
            self.window,
            "Delete attribute",
            f"Move '{row.name}' to the project's trash?\n\n"
            "You can restore it from Attribute → Trash….",
        ):
            self.vm.library.delete(row.id)

    def _open(self, dialog: QDialog) -> None:
        """Show `dialog` window-modal without blocking (the worker's signals keep arriving)."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = dialog
        dialog.finished.connect(lambda _: self._closed(dialog))
        dialog.open()

    def _closed(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()
