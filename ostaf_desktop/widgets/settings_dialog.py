"""Settings: the base model (demo, a diffusers folder or a single file, checked when chosen),
device (showing what this machine has), precision and the default output folder."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ostaf.models.demo_model import embedded_models
from ostaf_desktop.binding import assign_when_checked, bind, bind_combo, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.viewmodels.settings import DEMO, FILE, FOLDER, SettingsViewModel
from ostaf_desktop.widgets.layout import label
from ostaf_desktop.widgets.screen_fit import ScreenFittedDialog

PRECISION_LABELS = {
    "auto": "Automatic (fp16/bf16 on GPUs, fp32 on the CPU)",
    "fp32": "fp32 (exact, slow on GPUs)",
    "fp16": "fp16 (GPUs)",
    "bf16": "bf16 (recent NVIDIA GPUs)",
}


class SettingsDialog(ScreenFittedDialog):
    """Edits a SettingsViewModel; OK is enabled only for a usable model choice."""

    def __init__(self, vm: SettingsViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
        layout = QVBoxLayout(self)

        model_box = QGroupBox("Base model")
        model = QVBoxLayout(model_box)
        self.kind_group = QButtonGroup(self)
        # One choice per built-in demo model (a 64 px world of shapes, to try things).
        self.demos = {
            source: QRadioButton(f"Built-in: {model.name}, {model.summary}")
            for source, model in embedded_models().items()
        }
        self.demo = self.demos[DEMO]
        self.folder_choice = QRadioButton("A diffusers folder (with model_index.json)")
        self.file_choice = QRadioButton("A single .safetensors checkpoint (SD 1.x, 2.x or XL)")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("/path/to/stable-diffusion-v1-5")
        self.file = QLineEdit()
        self.file.setPlaceholderText("/path/to/model.safetensors")
        self.browse_folder = QPushButton(icon("folder"), "Browse…")
        self.browse_file = QPushButton(icon("folder"), "Browse…")
        self.radios = {**self.demos, FOLDER: self.folder_choice, FILE: self.file_choice}
        for kind, radio in self.radios.items():
            self.kind_group.addButton(radio)
            radio.toggled.connect(assign_when_checked(vm, "model_kind", kind))
        for radio in self.demos.values():
            model.addWidget(radio)
        model.addWidget(self.folder_choice)
        model.addLayout(_row(self.folder, self.browse_folder))
        model.addWidget(self.file_choice)
        model.addLayout(_row(self.file, self.browse_file))
        self.check = label(wrap=True)
        model.addWidget(self.check)
        layout.addWidget(model_box)

        run_box = QGroupBox("Running")
        form = QFormLayout(run_box)
        self.device = QComboBox()
        for device in vm.devices:
            self.device.addItem(vm.device_label(device, vm.available_devices), device)
        self.precision = QComboBox()
        for precision in vm.precisions:
            self.precision.addItem(PRECISION_LABELS.get(precision, precision), precision)
        available = ", ".join(vm.available_devices) or "known once the model has loaded"
        form.addRow("Device", self.device)
        form.addRow("", label(f"Available here: {available}", "hint"))
        form.addRow("Precision", self.precision)
        self.memory_saving = QCheckBox(
            "Memory saving while tuning (slower; for GPUs with little memory)"
        )
        form.addRow("", self.memory_saving)
        self.output = QLineEdit()
        self.output.setPlaceholderText("empty: the project's exports folder")
        self.browse_output = QPushButton(icon("folder"), "Browse…")
        form.addRow("Output folder", _row(self.output, self.browse_output))
        layout.addWidget(run_box)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.browse_folder.clicked.connect(self._choose_folder)
        self.browse_file.clicked.connect(self._choose_file)
        self.browse_output.clicked.connect(self._choose_output)

        bind_to(vm, "model_kind", self._show_kind, self)
        bind(vm, "folder", self.folder)
        bind(vm, "file", self.file)
        bind_combo(vm, "device", self.device)
        bind_combo(vm, "precision", self.precision)
        bind(vm, "output_dir", self.output)
        bind(vm, "memory_saving", self.memory_saving)
        bind_to(vm, "check_text", lambda _: self._show_check(), self)
        bind_to(vm, "check_ok", lambda _: self._show_check(), self)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            bind(vm, "can_accept", ok, "enabled")

    def _show_kind(self, kind: str) -> None:
        radio = self.radios[kind]
        if not radio.isChecked():
            radio.setChecked(True)
        self.folder.setEnabled(kind == FOLDER)
        self.browse_folder.setEnabled(kind == FOLDER)
        self.file.setEnabled(kind == FILE)
        self.browse_file.setEnabled(kind == FILE)

    def _show_check(self) -> None:
        if self.vm.checking:
            text, role = self.vm.check_text, "hint"
        elif self.vm.check_ok:
            text, role = f"✓ {self.vm.check_text}", "hint"
        else:
            text, role = f"✗ Not usable: {self.vm.check_text}", "error"
        self.check.setText(text)
        self.check.setProperty("role", role)
        self.check.style().polish(self.check)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if folder:
            self.vm.folder = folder

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a checkpoint", "", "Checkpoints (*.safetensors);;All files (*)"
        )
        if path:
            self.vm.file = path

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the default output folder")
        if folder:
            self.vm.output_dir = folder


def _row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
