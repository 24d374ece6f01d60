"""Render → Batch export…: prompts × seeds × λ values × attribute combinations, the file-name
template with a live preview, and the running job with progress, Cancel and Open folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ostaf.render.naming import FIELDS
from ostaf_desktop.binding import assign_when_checked, bind, bind_combo, bind_plain_text, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.prompt_examples import PromptExamples
from ostaf_desktop.viewmodels.batch import (
    COMBINE_CHOICES,
    MAX_SEED_COUNT,
    PREVIEW_NAMES,
    BatchViewModel,
)
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.widgets.layout import label, sampling_controls, schedule_control
from ostaf_desktop.widgets.library_panel import ID_ROLE, attribute_icon
from ostaf_desktop.widgets.screen_fit import ScreenFittedDialog

THUMB = 28


def _row(*widgets: QWidget, stretch: int = 0) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setSpacing(6)
    for index, widget in enumerate(widgets):
        row.addWidget(widget, 1 if index == stretch else 0)
    return row


class BatchDialog(ScreenFittedDialog):
    """Lays out and binds a BatchViewModel; closing it leaves a running batch running."""

    def __init__(
        self, vm: BatchViewModel, library: LibraryViewModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.vm = vm
        self.library = library
        self.setWindowTitle("Batch export")
        self.setMinimumSize(QSize(860, 560))  # fits a 1280×720 screen
        columns = QHBoxLayout()
        columns.setSpacing(10)
        self.what = self._what_box()
        self.how = self._how_box()
        columns.addWidget(self.what, 1)
        columns.addWidget(self.how, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addWidget(self._preview_box())
        layout.addLayout(self._run_area())
        self._bind()

    def show_examples(self, examples: PromptExamples) -> None:
        """Example prompts the model in use can draw."""
        self.prompts.setPlaceholderText("One prompt per line, e.g.\n" + "\n".join(examples.batch))
        self.negative.setPlaceholderText(f"optional, e.g. {examples.negative}")

    # -- layout ----------------------------------------------------------------------------
    def _what_box(self) -> QGroupBox:
        box = QGroupBox("What to render")
        form = QFormLayout(box)
        self.prompts = QPlainTextEdit()
        self.load_prompts = QPushButton(icon("open-image"), "Load from file…")
        prompts = QVBoxLayout()
        prompts.addWidget(self.prompts, 1)
        prompts.addLayout(_row(label("One per line", "hint"), self.load_prompts))
        self.seed_list = QRadioButton("List")
        self.seed_count_choice = QRadioButton("Count")
        self.seed_group = QButtonGroup(self)
        self.seed_group.addButton(self.seed_list)
        self.seed_group.addButton(self.seed_count_choice)
        self.seeds = QLineEdit()
        self.seeds.setPlaceholderText("e.g. 1, 2, 5-7")
        self.seed_count = QSpinBox()
        self.seed_count.setRange(1, MAX_SEED_COUNT)
        self.seed_count.setToolTip("Seeds 0, 1, … count − 1")
        self.intensities = QLineEdit()
        self.intensities.setPlaceholderText("e.g. 0.5, 1, 1.5 (empty: each default λ)")
        self.intensities.setToolTip(
            "Every ticked attribute is rendered at each λ; attributes applied together are "
            "rendered at every pairing of their λ values"
        )
        self.attributes = QListWidget()
        self.attributes.setIconSize(QSize(THUMB, THUMB))
        self.attributes.setToolTip("The attributes to combine; none: the base model alone")
        self.combine = QComboBox()
        for text, value in COMBINE_CHOICES:
            self.combine.addItem(text, value)
        form.addRow("Prompts", prompts)
        seeds = _row(self.seed_list, self.seeds, self.seed_count_choice, self.seed_count, stretch=1)
        form.addRow("Seeds", seeds)
        form.addRow("λ values", self.intensities)
        form.addRow("Attributes", self.attributes)
        form.addRow("Combine", self.combine)
        return box

    def _how_box(self) -> QGroupBox:
        box = QGroupBox("How and where")
        form = QFormLayout(box)
        self.negative = QLineEdit()
        self.sampler, self.steps, self.guidance = sampling_controls()
        self.schedule = schedule_control()
        self.size_combo = QComboBox()
        self.out_dir = QLineEdit()
        self.choose_out = QPushButton(icon("folder"), "Choose…")
        self.template = QLineEdit()
        self.template.setToolTip(
            "Fields: " + ", ".join(f"{{{f}}}" for f in FIELDS) + "; names stay in the folder"
        )
        self.contact_sheet = QCheckBox("Also write a labelled contact sheet")
        self.overwrite = QCheckBox("Replace images rendered with other settings")
        self.overwrite.setToolTip(
            "Off: the batch stops rather than replace files it did not render with these "
            "settings. Complete images of this batch are always skipped, so a re-run resumes."
        )
        form.addRow("Negative", self.negative)
        form.addRow(
            "Sampler",
            _row(self.sampler, self.schedule, label("Steps"), self.steps, stretch=0),
        )
        form.addRow("CFG", _row(self.guidance, label("Size"), self.size_combo, stretch=2))
        form.addRow("Folder", _row(self.out_dir, self.choose_out))
        form.addRow("File names", self.template)
        fields = " ".join(f"{{{f}}}" for f in FIELDS)
        form.addRow("", label(f"Fields: {fields}", "hint", wrap=True))
        form.addRow("", self.contact_sheet)
        form.addRow("", self.overwrite)
        return box

    def _preview_box(self) -> QGroupBox:
        box = QGroupBox("Preview")
        layout = QVBoxLayout(box)
        layout.setSpacing(3)
        # Every part has a fixed height (long names are elided, the full list is in the
        # tooltip), so the dialog does not jump while the plan is typed.
        self.plan = label(role="value", wrap=True)
        self.names = label()
        self.names.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.names.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.names.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.names.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.error = label(role="error", wrap=True)
        for part, lines in ((self.plan, 2), (self.names, PREVIEW_NAMES + 1), (self.error, 2)):
            part.setFixedHeight(part.fontMetrics().lineSpacing() * lines + 4)
            policy = part.sizePolicy()
            policy.setRetainSizeWhenHidden(True)  # hidden, it keeps its room
            part.setSizePolicy(policy)
            layout.addWidget(part)
        return box

    def _run_area(self) -> QVBoxLayout:
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.status = label(wrap=True)
        self.time = label(role="hint")
        self.open_folder = QPushButton(icon("folder"), "Open folder")
        self.open_sheet = QPushButton(icon("open-external"), "Open contact sheet")
        self.close_button = QPushButton("Close")
        self.cancel = QPushButton(icon("cancel"), "Cancel")
        self.cancel.setToolTip("Stop after the image being rendered; finished images are kept")
        self.start = QPushButton(icon("render"), "Start")
        self.start.setProperty("role", "primary")
        self.start.setToolTip("Render every image not already complete (a re-run resumes)")
        status = QHBoxLayout()
        status.addWidget(self.status, 1)
        status.addWidget(self.time)
        buttons = QHBoxLayout()
        for button in (self.open_folder, self.open_sheet):
            buttons.addWidget(button)
        buttons.addStretch(1)
        for button in (self.close_button, self.cancel, self.start):
            buttons.addWidget(button)
        area = QVBoxLayout()
        area.addWidget(self.progress)
        area.addLayout(status)
        area.addLayout(buttons)
        return area

    # -- binding -----------------------------------------------------------------------------
    def _bind(self) -> None:
        vm = self.vm
        bind_plain_text(vm, "prompts_text", self.prompts)
        self.seed_list.toggled.connect(assign_when_checked(vm, "seeds_mode", "list"))
        self.seed_count_choice.toggled.connect(assign_when_checked(vm, "seeds_mode", "count"))
        bind_to(vm, "seeds_mode", self._show_seeds_mode, self)
        bind(vm, "seeds_text", self.seeds)
        bind(vm, "seed_count", self.seed_count)
        bind(vm, "intensities_text", self.intensities)
        bind_combo(vm, "combine", self.combine)
        bind(vm, "negative_prompt", self.negative)
        bind_combo(vm, "sampler", self.sampler)
        bind_combo(vm, "schedule", self.schedule)
        bind_to(vm, "sampler", lambda s: self.schedule.setEnabled(s != "ddim"), self)
        bind(vm, "steps", self.steps)
        bind(vm, "guidance", self.guidance)
        bind_to(vm, "size_options", self._fill_sizes, self)
        bind_combo(vm, "size", self.size_combo)
        bind(vm, "out_dir", self.out_dir)
        bind(vm, "template", self.template)
        bind(vm, "contact_sheet", self.contact_sheet)
        bind(vm, "overwrite", self.overwrite)
        bind(vm, "plan_text", self.plan, "text")
        bind_to(vm, "plan_text", lambda text: self.plan.setVisible(bool(text)), self)
        bind_to(vm, "preview_names", self._show_names, self)
        bind(vm, "plan_error", self.error, "text")
        bind_to(vm, "plan_error", lambda text: self.error.setVisible(bool(text)), self)
        bind(vm, "can_start", self.start, "enabled")
        bind(vm, "running", self.cancel, "enabled")
        for box in (self.what, self.how):  # the form describes the running batch: keep it
            bind(vm, "running", box, "enabled", convert=lambda running: not running)
        bind(vm, "running", self.progress, "visible")
        bind(vm, "total_steps", self.progress, "maximum", convert=lambda t: max(1, t))
        bind(vm, "step", self.progress, "value")
        bind(vm, "status_text", self.status, "text")
        bind(vm, "time_text", self.time, "text")
        bind_to(vm, "finished_folder", lambda f: self.open_folder.setVisible(f is not None), self)
        bind_to(vm, "sheet", lambda s: self.open_sheet.setVisible(s is not None), self)
        bind_to(self.library, "rows", lambda _: self._fill_attributes(), self)
        bind_to(vm, "chosen", lambda _: self._sync_attributes(), self)
        self.attributes.itemChanged.connect(self._on_attribute_ticked)
        self.load_prompts.clicked.connect(self._load_prompts)
        self.choose_out.clicked.connect(self._choose_out)
        self.open_folder.clicked.connect(lambda: self._open(self.vm.finished_folder))
        self.open_sheet.clicked.connect(lambda: self._open(self.vm.sheet))
        self.start.clicked.connect(vm.start)
        self.cancel.clicked.connect(vm.cancel)
        self.close_button.clicked.connect(self.close)

    def _show_names(self, names: tuple[str, ...]) -> None:
        metrics, width = self.names.fontMetrics(), max(200, self.names.width())
        shown = [metrics.elidedText(n, Qt.TextElideMode.ElideMiddle, width) for n in names]
        self.names.setText("\n".join(shown))
        self.names.setToolTip("\n".join(names) if shown != list(names) else "")

    def _show_seeds_mode(self, mode: str) -> None:
        radio = self.seed_count_choice if mode == "count" else self.seed_list
        if not radio.isChecked():
            radio.setChecked(True)
        self.seeds.setEnabled(mode != "count")
        self.seed_count.setEnabled(mode == "count")

    def _fill_sizes(self, options: tuple[tuple[str, str], ...]) -> None:
        blocker = QSignalBlocker(self.size_combo)
        self.size_combo.clear()
        for text, value in options:
            self.size_combo.addItem(text, value)
        self.size_combo.setCurrentIndex(max(0, self.size_combo.findData(self.vm.size)))
        del blocker

    def _fill_attributes(self) -> None:
        blocker = QSignalBlocker(self.attributes)
        self.attributes.clear()
        for row in self.library.rows:
            item = QListWidgetItem(attribute_icon(row, THUMB), f"{row.name} · {row.kind}")
            item.setData(ID_ROLE, row.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setToolTip(f"default λ {row.default_lambda:g}")
            self.attributes.addItem(item)
        del blocker
        self._sync_attributes()

    def _sync_attributes(self) -> None:
        blocker = QSignalBlocker(self.attributes)
        for index in range(self.attributes.count()):
            item = self.attributes.item(index)
            on = item.data(ID_ROLE) in self.vm.chosen
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        del blocker

    def _on_attribute_ticked(self, item: QListWidgetItem) -> None:
        self.vm.set_chosen(str(item.data(ID_ROLE)), item.checkState() == Qt.CheckState.Checked)

    # -- actions -----------------------------------------------------------------------------
    def _load_prompts(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load prompts", "", "Text files (*.txt);;All files (*)"
        )
        if path:
            self.vm.load_prompts(Path(path))

    def _choose_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.vm.out_dir)
        if folder:
            self.vm.out_dir = folder

    def _open(self, path: Path | None) -> None:
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
