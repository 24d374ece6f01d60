"""Export as LoRA…: format, the λ baked in and the output file; the outcome with its path."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import bind, bind_combo, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.lora_export import FORMAT_CHOICES, LoraExportViewModel
from ostaf_desktop.widgets.layout import label
from ostaf_desktop.widgets.screen_fit import ScreenFittedDialog


class LoraExportDialog(ScreenFittedDialog):
    """Edits a LoraExportViewModel; Export runs on the worker and reports where it wrote."""

    def __init__(self, vm: LoraExportViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setWindowTitle("Export as LoRA")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        self.title = label(role="title")
        self.intro = label(
            "Choose the format of the tool you render with: kohya works in A1111/Forge, "
            "ComfyUI, InvokeAI and diffusers. The intensity λ is baked in, so weight 1 there "
            "gives the attribute at this λ.",
            "hint",
            wrap=True,
        )
        self.format = QComboBox()
        for text, value in FORMAT_CHOICES:
            self.format.addItem(text, value)
        self.intensity = QDoubleSpinBox()
        self.intensity.setRange(0.0, 2.0)
        self.intensity.setSingleStep(0.05)
        self.intensity.setDecimals(2)
        self.out = QLineEdit()
        self.browse = QPushButton(icon("folder"), "Choose…")
        self.overwrite = QCheckBox("Replace the file if it exists")
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(self.browse)
        form = QFormLayout()
        self.format_note = label(role="hint", wrap=True)
        form.addRow("Format", self.format)
        form.addRow("", self.format_note)
        form.addRow("λ", self.intensity)
        form.addRow("File", out_row)
        form.addRow("", self.overwrite)
        self.word_note = label(role="hint", wrap=True)
        self.word_note.setTextFormat(Qt.TextFormat.PlainText)
        form.addRow("Word", self.word_note)
        self.hint = label(role="hint", wrap=True)
        self.outcome = label(wrap=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.show_folder = QPushButton(icon("folder"), "Show in folder")
        self.export = QPushButton(icon("export"), "Export")
        self.export.setProperty("role", "primary")
        self.buttons.addButton(self.show_folder, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.export, QDialogButtonBox.ButtonRole.ActionRole)
        layout.addWidget(self.title)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.buttons.rejected.connect(self.reject)
        self.browse.clicked.connect(self._choose_file)
        self.export.clicked.connect(vm.export)
        self.show_folder.clicked.connect(self._show_folder)
        bind(vm, "attribute_name", self.title, "text", convert=lambda n: f"LoRA of '{n}'")
        bind_combo(vm, "format", self.format)
        bind(vm, "format_note", self.format_note, "text")
        bind(vm, "intensity", self.intensity)
        bind(vm, "out_path", self.out)
        bind(vm, "overwrite", self.overwrite)
        bind(vm, "hint", self.hint, "text")
        bind(vm, "word_note", self.word_note, "text")
        bind(vm, "result_text", self.outcome, "text")
        bind(vm, "can_export", self.export, "enabled")
        bind_to(vm, "written", lambda path: self.show_folder.setVisible(path is not None), self)
        bind_to(vm, "running", lambda running: self.format.setEnabled(not running), self)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the LoRA as", self.vm.out_path, "LoRA files (*.safetensors)"
        )
        if path:
            self.vm.out_path = path if path.endswith(".safetensors") else f"{path}.safetensors"

    def _show_folder(self) -> None:
        if self.vm.written is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.vm.written).parent)))
