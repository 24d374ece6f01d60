"""The main window: projects and library on the left, the reference canvas in the centre,
learning and rendering on the right, results along the bottom; menus with shortcuts and a
status bar with the model and the worker's state."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QMargins,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ostaf import __version__, paths
from ostaf_desktop.binding import bind, bind_to
from ostaf_desktop.icons import icon
from ostaf_desktop.jobs import Job
from ostaf_desktop.prompt_examples import PromptExamples
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.settings import SettingsViewModel
from ostaf_desktop.widgets.batch_dialog import BatchDialog
from ostaf_desktop.widgets.error_banner import ErrorBanner
from ostaf_desktop.widgets.hint_bar import DemoModelHint
from ostaf_desktop.widgets.layout import ScrolledColumn, confirm
from ostaf_desktop.widgets.library_actions import LibraryActions
from ostaf_desktop.widgets.library_panel import LibraryPanel
from ostaf_desktop.widgets.project_browser import ProjectBrowser
from ostaf_desktop.widgets.reference_panel import ReferencePanel
from ostaf_desktop.widgets.render_panel import RenderPanel
from ostaf_desktop.widgets.results_strip import ResultsStrip
from ostaf_desktop.widgets.resume_bar import ResumeBar
from ostaf_desktop.widgets.screen_fit import fitted
from ostaf_desktop.widgets.settings_dialog import SettingsDialog
from ostaf_desktop.widgets.shortcuts import SHORTCUT_HELP, Shortcuts
from ostaf_desktop.widgets.tuning_panel import TuningControls, TuningProgress

log = logging.getLogger("ostaf_desktop")

DEFAULT_SIZE = QSize(1440, 900)
# Room for the window manager's title bar and borders, which the first placement cannot
# measure before the window is shown.
FRAME_ALLOWANCE = QMargins(2, 34, 2, 2)
# Shares of the window's width for the columns (library, canvas, tuning, render) until the
# user moves them; the columns' minimums win on small screens.
COLUMN_SHARES = (0.2, 0.32, 0.24, 0.24)


def available_area(window: QWidget) -> QRect:
    """The part of the window's screen that windows may use (without panels and docks)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(QPoint(), DEFAULT_SIZE)


def first_geometry(area: QRect) -> QRect:
    """Where the window opens when no layout was saved: the default size centred in `area`,
    shrunk where the screen is smaller, with room for the title bar and borders."""
    inner = area.marginsRemoved(FRAME_ALLOWANCE)
    frame = QRect(QPoint(), DEFAULT_SIZE)
    frame.moveCenter(inner.center())
    return fitted(frame, inner)


class MainWindow(QMainWindow):
    """Lays out the panels and binds them to the MainViewModel."""

    first_painted = Signal()

    def __init__(self, vm: MainViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._painted = False
        self._ask_before_closing = True
        self.remember_layout = (
            True  # off for --screenshot: a picture must not move the user's layout
        )
        self.setWindowTitle("OSTAF")
        self.setWindowIcon(icon("app"))
        self.projects = ProjectBrowser(vm.projects)
        self.library = LibraryPanel(vm.library, vm.editor, vm.words)
        self.reference = ReferencePanel(vm.reference)
        self.tuning = TuningControls(vm.tuning)
        self.tuning_progress = TuningProgress(vm.tuning)
        self.render_panel = RenderPanel(vm.rendering, vm.library, vm.words)
        self.results = ResultsStrip(vm.results)
        self.banner = ErrorBanner(vm.session)
        self.hint = DemoModelHint(vm.session)
        self.resume_bar = ResumeBar(vm.resume)

        self.left = QSplitter(Qt.Orientation.Vertical)
        self.left.addWidget(self.projects)
        self.left.addWidget(self.library)
        self.left.setSizes([200, 600])
        self.centre = QSplitter(Qt.Orientation.Vertical)
        self.centre.addWidget(self.reference)
        self.centre.addWidget(self.tuning_progress)
        self.centre.setStretchFactor(0, 1)
        self.centre.setSizes([420, 220])
        self.columns = QSplitter(Qt.Orientation.Horizontal)
        # Every column fits a 1280×720 screen at its minimum: the side columns scroll when the
        # window is short (the Learn column all but its Tune row), the centre shrinks its
        # canvas; the canvas takes what is left.
        for column in (
            ScrolledColumn(self.left),
            self.centre,
            self.tuning,  # it scrolls its choices itself: Tune stays in view
            ScrolledColumn(self.render_panel),
        ):
            self.columns.addWidget(column)
        self._columns_placed = False  # set from COLUMN_SHARES when first shown
        self.columns.setStretchFactor(1, 1)
        self.rows = QSplitter(Qt.Orientation.Vertical)
        self.rows.addWidget(self.columns)
        self.rows.addWidget(self.results)
        self.rows.setStretchFactor(0, 1)
        self.rows.setStretchFactor(1, 0)
        self.rows.setSizes([700, 170])
        for splitter in (self.left, self.centre, self.columns, self.rows):
            splitter.setChildrenCollapsible(False)
            splitter.setHandleWidth(6)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(8, 6, 8, 4)
        layout.setSpacing(6)
        layout.addWidget(self.banner)
        layout.addWidget(self.resume_bar)
        layout.addWidget(self.hint)
        layout.addWidget(self.rows, 1)
        self.setCentralWidget(central)

        self.batch_dialog: BatchDialog | None = None
        self.library_actions = LibraryActions(vm, self)
        self.shortcuts = Shortcuts(self)
        self._build_status_bar()
        self.hint.open_settings.connect(self.open_settings)
        self.results.reuse_settings.connect(vm.image_settings.open)
        vm.session.notice.connect(self._show_notice)
        bind_to(vm.session, "examples", self._show_examples, self)
        bind_to(vm.projects, "current", lambda _: self._update_title(), self)
        bind_to(vm.library, "selected_id", lambda _: self._update_actions(), self)
        bind_to(vm.projects, "current", lambda _: self._update_actions(), self)

    # -- status bar ----------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.message = QLabel()
        self.job_state = QLabel()
        self.model_state = QLabel()
        self.model_state.setToolTip("The base model and where it runs; change it in Settings")
        bar.addWidget(self.message, 1)
        bar.addPermanentWidget(self.job_state)
        bar.addPermanentWidget(self.model_state)
        bind(self.vm.session, "status_message", self.message, "text")
        bind(self.vm.session, "model_status", self.model_state, "text")
        self.vm.jobs.job_changed.connect(lambda _: self._show_jobs())
        self._show_jobs()

    def _show_jobs(self) -> None:
        job: Job | None = self.vm.jobs.running_job
        waiting = self.vm.jobs.waiting_count
        text = f"Working: {job.kind}" if job is not None else "Idle"
        if waiting:
            text += f" · {waiting} waiting"
        self.job_state.setText(text)

    def _update_title(self) -> None:
        project = self.vm.projects.current
        self.setWindowTitle(f"{project.name} — OSTAF" if project is not None else "OSTAF")

    # -- actions -------------------------------------------------------------------------
    def open_settings(self) -> None:
        model = self.vm.session.model
        vm = SettingsViewModel(
            self.vm.session.settings, model.available_devices if model is not None else ()
        )
        dialog = SettingsDialog(vm, self)
        if dialog.exec() == SettingsDialog.DialogCode.Accepted:
            self.vm.apply_settings(vm.result())

    def open_batch(self) -> None:
        """The batch export dialog (one, kept while the app runs: a batch outlives closing it)."""
        if self.vm.projects.current is None:
            return
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(self.vm.batch, self.vm.library, self)
            self.batch_dialog.show_examples(self.vm.session.examples)
        self.vm.batch.prepare()
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        self.batch_dialog.activateWindow()

    def open_image_settings(self) -> None:
        """Choose a rendered PNG and put its settings into the Render panel."""
        folder = self.vm.rendering.output_dir()
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image settings", str(folder or ""), "PNG images (*.png);;All files (*)"
        )
        if path:
            self.vm.image_settings.open(Path(path))

    def _show_examples(self, examples: PromptExamples) -> None:
        """Examples the base model chosen in Settings can draw (the demo model: its world)."""
        self.render_panel.show_examples(examples)
        self.tuning.picker.show_examples(examples)
        if self.batch_dialog is not None:
            self.batch_dialog.show_examples(examples)

    def _show_notice(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)

    def _update_actions(self) -> None:
        has_project = self.vm.projects.current is not None
        has_selection = self.vm.library.selected is not None
        keys = self.shortcuts
        for action in (keys.export_file, keys.export_lora):
            action.setEnabled(has_selection)
        for action in (keys.import_files, keys.import_project, keys.trash, keys.batch):
            action.setEnabled(has_project)

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUT_HELP)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About OSTAF",
            f"<b>OSTAF Desktop {__version__}</b><p>Learn the appearance, shape or style of one "
            "reference image and apply it to any Stable Diffusion prompt, offline.</p>"
            f"<p>Data: {paths.data_dir()}<br>Logs: {paths.log_dir()}</p>",
        )

    def open_log_folder(self) -> None:
        folder = paths.log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- geometry ------------------------------------------------------------------------
    def restore_layout(self) -> None:
        ui = self.vm.session.ui
        restored = bool(ui.geometry) and self.restoreGeometry(
            QByteArray.fromBase64(ui.geometry.encode())
        )
        if not restored:  # the first start: the default size where the screen has room
            self.setGeometry(first_geometry(available_area(self)))
        if ui.window_state:
            self.restoreState(QByteArray.fromBase64(ui.window_state.encode()))
        for name, splitter in self._splitters().items():
            state = ui.splitters.get(name)
            if isinstance(state, str) and state:
                placed = splitter.restoreState(QByteArray.fromBase64(state.encode()))
                self._columns_placed |= placed and splitter is self.columns

    def save_layout(self) -> None:
        ui = self.vm.session.ui
        ui.geometry = bytes(self.saveGeometry().toBase64().data()).decode()
        ui.window_state = bytes(self.saveState().toBase64().data()).decode()
        ui.splitters = {
            name: bytes(s.saveState().toBase64().data()).decode()
            for name, s in self._splitters().items()
        }

    def _splitters(self) -> dict[str, QSplitter]:
        return {
            "left": self.left,
            "centre": self.centre,
            "columns": self.columns,
            "rows": self.rows,
        }

    # -- events --------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._columns_placed:
            self._columns_placed = True
            layout = self.layout()
            if layout is not None:
                layout.activate()  # the splitter gets its real width first
            self.columns.setSizes([round(share * self.width()) for share in COLUMN_SHARES])

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.UpdateRequest and not self._painted:
            self._painted = True  # the whole window has just been painted for the first time
            self.first_painted.emit()
        return handled

    def close_without_asking(self, why: str = "") -> None:
        """Close as a confirmed close does (a logout, `kill` or Ctrl+C asked for it): the open
        dialogs are dismissed first, then the window closes at the top of the event loop and
        the application quits."""
        log.info("closing without asking%s", f" ({why})" if why else "")
        self._ask_before_closing = False
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()
        QTimer.singleShot(0, self._close_and_quit)

    def _close_and_quit(self) -> None:
        if self.close():
            QApplication.quit()

    def closeEvent(self, event: QCloseEvent) -> None:
        for running, title, text in (
            (
                self.vm.tuning.running,
                "Tuning is running",
                "Stop tuning and quit? The run is kept: OSTAF offers to resume it next time.",
            ),
            (
                self.vm.batch.running,
                "A batch export is running",
                "Stop the batch and quit? Finished images are kept; running the same batch "
                "again resumes.",
            ),
        ):
            if running and self._ask_before_closing and not confirm(self, title, text):
                event.ignore()
                return
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        if self.remember_layout:
            self.save_layout()
        self.vm.shutdown(save_state=self.remember_layout)
        event.accept()
