"""The Qt application: the window is painted first, then the worker thread starts and loads
the base model (torch is imported there, never on the start-up path). Started by
`ostaf_desktop.launcher`, which handles the flags that need no window."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QSize, QThread, QTimer
from PySide6.QtWidgets import QApplication

from ostaf_desktop import APP_ID
from ostaf_desktop.backend import CoreBackend
from ostaf_desktop.collection import CHECK_INTERVAL_MS, COLLECTION
from ostaf_desktop.crash_handling import (
    DeadRun,
    ErrorRelay,
    RunRecord,
    asyncio_exception_handler,
    collect_dead_runs,
    install_exception_hooks,
    setup_logging,
)
from ostaf_desktop.icons import icon
from ostaf_desktop.launch_options import LaunchOptions
from ostaf_desktop.quit_signals import QuitOnSignals
from ostaf_desktop.screenshot import ScreenshotWhenIdle
from ostaf_desktop.theme import apply_theme
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.widgets.main_window import DEFAULT_SIZE, MainWindow

log = logging.getLogger("ostaf_desktop")
_START = time.perf_counter()
HEARTBEAT_MS = 30_000  # how precisely the next start can say when a killed run died


AppDriver = Callable[[MainWindow, MainViewModel], None]


def run_app(options: LaunchOptions, qt_args: list[str], driver: AppDriver | None = None) -> int:
    """Open the window and run until it closes; returns the exit code. `driver`, if given,
    gets the window once it is built (the soak harness in bench/ drives the app through it)."""
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_ID)
    app.setDesktopFileName(APP_ID)
    app.setApplicationDisplayName("OSTAF")
    app.setWindowIcon(icon("app"))
    apply_theme(app)
    setup_logging()
    collector = collect_on_gui_thread(app)
    relay = ErrorRelay()
    install_exception_hooks(relay)
    dead = collect_dead_runs()
    signals = QuitOnSignals.install(on_second=lambda name: note_second_signal(record, name))
    record = RunRecord.start()
    window, vm = build_window(options, relay)
    if signals is not None:
        signals.quit_with(window.close_without_asking)
    report_dead_runs(vm.session, dead)
    if driver is not None:
        driver(window, vm)
    heartbeat = QTimer(app)
    if record is not None:
        heartbeat.timeout.connect(record.heartbeat)
        heartbeat.start(HEARTBEAT_MS)
    window.show()
    try:
        code = run_event_loop(app, relay)
    finally:
        heartbeat.stop()
        collector.stop()
        if record is not None:
            record.stop()
        if signals is not None:
            signals.uninstall()
    log.info("the window has closed; exit code %d", code)
    return code


def note_second_signal(record: RunRecord | None, name: str) -> None:
    if record is not None:
        record.note_cause(f"ended by a second {name} while it was quitting")
        record.dump_threads()  # where quitting was stuck


def collect_on_gui_thread(app: QApplication) -> QTimer:
    """Python's garbage collection only on this (the GUI) thread, between events: see
    `ostaf_desktop.collection` for why. Returns the timer that runs it."""
    COLLECTION.install()
    timer = QTimer(app)
    timer.timeout.connect(collect_at_top_level)
    timer.start(CHECK_INTERVAL_MS)
    return timer


def collect_at_top_level() -> None:
    """Collect what is due, but not inside a modal dialog's loop: an event handler below it
    on the stack is still running (its objects wait for the dialog to close)."""
    if QThread.currentThread().loopLevel() <= 1:
        COLLECTION.collect_due()


def report_dead_runs(session: SessionViewModel, dead: list[DeadRun]) -> None:
    """Say in the banner (it does not block) that the last run died, when and where its log is."""
    if dead:
        log.warning("previous run(s) ended without a clean exit: %s", dead)
        session.report(dead[0].report(others=len(dead) - 1))


def build_window(options: LaunchOptions, relay: ErrorRelay) -> tuple[MainWindow, MainViewModel]:
    """The main window and its view-model; the worker starts once the window is painted."""
    vm = MainViewModel(CoreBackend)
    relay.reported.connect(vm.session.report)
    window = MainWindow(vm)
    if options.screenshot is not None:
        size = options.screenshot_size
        window.resize(QSize(*size) if size else DEFAULT_SIZE)  # the same picture everywhere
        window.remember_layout = False
        shooter = ScreenshotWhenIdle(window, vm, options.screenshot, options.screenshot_timeout_s)
        window.first_painted.connect(shooter.start)
    else:
        window.restore_layout()

    def painted() -> None:
        log.info(
            "window painted at epoch %.3f, %.3f s after the app module loaded (torch loaded: %s)",
            time.time(),
            time.perf_counter() - _START,
            "torch" in sys.modules,
        )
        if options.project:
            vm.projects.open(options.project)
        QTimer.singleShot(0, vm.start)

    window.first_painted.connect(painted)
    return window, vm


def run_event_loop(app: QApplication, relay: ErrorRelay) -> int:
    """Run Qt's event loop under qasync, so asyncio code and Qt share one loop."""
    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(asyncio_exception_handler(relay))
    try:
        return int(loop.run_forever())
    finally:
        loop.close()
