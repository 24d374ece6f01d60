"""Python's cyclic collector runs on the GUI thread only (ostaf_desktop/collection.py).

The app died twice with "Garbage-collecting" on top of a thread: once on the main thread
inside an application-wide event filter, once on the worker while it loaded a tokenizer. These
tests force what caused it — collections asked for from a worker, cyclic garbage holding Qt
objects, a worker allocating hard — while the GUI thread delivers events, and check where each
collection ran and where each Qt object was deleted.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from ostaf.settings import Settings
from ostaf_desktop.app import collect_on_gui_thread
from ostaf_desktop.collection import COLLECTION
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.settings import SettingsViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from ostaf_desktop.widgets.settings_dialog import SettingsDialog


@pytest.fixture
def collection_threads() -> Iterator[list[int]]:
    """The thread ident of every collection that starts while the test runs."""
    seen: list[int] = []

    def record(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(threading.get_ident())

    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)


class Cyclic(QObject):
    """A Python-owned Qt object that keeps itself alive through a cycle (as a stored bound
    method or a view-model's back-reference does): only the cyclic collector deletes it."""

    poked = Signal()

    def __init__(self, deleted_in: list[int]) -> None:
        super().__init__()
        self.handler = self.objectName  # a bound method stored on itself: a cycle
        self._deleted_in = deleted_in

    def __del__(self) -> None:
        # The wrapper's deallocation deletes the C++ object, in the collecting thread.
        self._deleted_in.append(threading.get_ident())


def test_the_suite_runs_with_automatic_collection_off() -> None:
    assert COLLECTION.installed
    assert not gc.isenabled()


def test_a_worker_asking_for_a_collection_hands_it_to_the_gui_thread(
    collection_threads: list[int],
) -> None:
    before = COLLECTION.handed_over
    worker = threading.Thread(target=lambda: [gc.collect() for _ in range(20)])
    worker.start()
    worker.join()
    assert COLLECTION.handed_over == before + 20
    assert collection_threads == []  # nothing collected on the worker
    COLLECTION.collect_due()  # the GUI thread's next check runs the full collection asked for
    assert collection_threads == [threading.get_ident()]


def test_a_worker_allocating_cycles_never_starts_a_collection(
    collection_threads: list[int],
) -> None:
    def allocate() -> None:
        for _ in range(200_000):  # ~300 times generation 0's threshold
            cycle: list[object] = []
            cycle.append(cycle)

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    assert collection_threads == []
    COLLECTION.collect_due()
    assert set(collection_threads) <= {threading.get_ident()}


def test_cyclic_qt_garbage_is_deleted_on_the_gui_thread_under_worker_pressure(
    qtbot: QtBot, collection_threads: list[int]
) -> None:
    main = threading.get_ident()
    deleted_in: list[int] = []
    stop = threading.Event()

    def press() -> None:  # what accelerate and torch do, plus plain allocation
        while not stop.is_set():
            gc.collect()
            junk: list[object] = []
            for _ in range(2_000):
                cycle: list[object] = []
                cycle.append(cycle)
                junk.append(cycle)

    workers = [threading.Thread(target=press) for _ in range(2)]
    for worker in workers:
        worker.start()
    made = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for _ in range(50):
                garbage = Cyclic(deleted_in)
                garbage.poked.emit()
                QTimer.singleShot(0, garbage, garbage.poked.emit)  # an event on its way to it
                made += 1
            del garbage
            qtbot.wait(5)  # the GUI thread delivers events while the workers press
            COLLECTION.collect_due()
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    COLLECTION.collect_due()
    gc.collect()
    assert len(deleted_in) == made  # the collector deleted every cyclic Qt object…
    assert set(deleted_in) == {main}  # …on the GUI thread
    assert set(collection_threads) == {main}


def test_the_app_collects_from_a_timer_on_the_gui_thread(
    qtbot: QtBot, collection_threads: list[int]
) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    timer = collect_on_gui_thread(app)
    try:
        runs = sum(COLLECTION.collections)
        for _ in range(5_000):  # well past generation 0's threshold
            cycle: list[object] = []
            cycle.append(cycle)
        qtbot.waitUntil(lambda: sum(COLLECTION.collections) > runs, timeout=3000)
    finally:
        timer.stop()
        timer.deleteLater()
    assert collection_threads and set(collection_threads) == {threading.get_ident()}


def test_the_window_and_its_dialogs_install_no_application_event_filter(
    vm: MainViewModel, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed: list[object] = []
    original = QCoreApplication.installEventFilter

    def spy(self: QObject, watcher: QObject) -> None:
        if isinstance(self, QCoreApplication):
            installed.append(watcher)
        original(self, watcher)

    monkeypatch.setattr(QCoreApplication, "installEventFilter", spy)
    monkeypatch.setattr(QWidget, "installEventFilter", spy)
    window = MainWindow(vm)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    dialog = SettingsDialog(SettingsViewModel(Settings(), ("cpu",)), window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert installed == []
