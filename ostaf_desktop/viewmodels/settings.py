"""The Settings dialog's state: base model (checked when chosen), device, precision and
the default output folder."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ostaf.errors import OstafError
from ostaf.models.demo_model import is_demo_source
from ostaf.models.model_check import check_model_source
from ostaf.settings import DEVICES, PRECISIONS, Settings
from ostaf_desktop.observable import Observable, ViewModel

DEMO, FOLDER, FILE = "demo", "folder", "file"  # or any embedded model's source word
# The settings the dialog edits (the others, such as the last project, the app keeps itself):
# `result()` fills them in and applying the dialog saves every one of them.
DIALOG_FIELDS = ("model_source", "device", "precision", "output_dir", "memory_saving")
ModelChecker = Callable[[str], str]


class SettingsViewModel(ViewModel):
    """Edits a copy of the settings; `result()` gives the new settings when accepted."""

    model_kind = Observable(DEMO)
    folder = Observable("")
    file = Observable("")
    check_text = Observable("")
    check_ok = Observable(True)
    checking = Observable(False)
    device = Observable("auto")
    precision = Observable("auto")
    output_dir = Observable("")
    memory_saving = Observable(False)
    can_accept = Observable(True)

    _checked = Signal(int, bool, str)  # generation, usable, message (from the check thread)

    def __init__(
        self,
        settings: Settings,
        available_devices: tuple[str, ...] = (),
        checker: ModelChecker = check_model_source,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._original = settings
        self._checker = checker
        self._generation = itertools.count(1)
        self._current = 0
        self.available_devices = available_devices
        source = settings.model_source
        if is_demo_source(source):
            self.model_kind = source
        elif Path(source).is_dir():
            self.model_kind, self.folder = FOLDER, source
        else:
            self.model_kind, self.file = FILE, source
        self.device, self.precision = settings.device, settings.precision
        self.output_dir = settings.output_dir
        self.memory_saving = settings.memory_saving
        self._checked.connect(self._on_checked)
        self.changed.connect(self._on_change)
        self.check()

    @staticmethod
    def device_label(device: str, available: tuple[str, ...]) -> str:
        if device == "auto":
            best = available[0] if available else "checking…"
            return f"Automatic ({best})" if available else "Automatic"
        if not available:
            return device
        return device if device in available else f"{device} (not available here)"

    @property
    def devices(self) -> tuple[str, ...]:
        return DEVICES

    @property
    def precisions(self) -> tuple[str, ...]:
        return PRECISIONS

    def source(self) -> str:
        if self.model_kind == FOLDER:
            return self.folder.strip()
        if self.model_kind == FILE:
            return self.file.strip()
        return self.model_kind  # an embedded model's source word

    def check(self) -> None:
        """Check the chosen model in a background thread (reading a checkpoint's header can
        take a moment); the result arrives in check_text/check_ok."""
        source = self.source()
        generation = self._current = next(self._generation)
        if not source:
            self._on_checked(generation, False, "Choose a folder or a file")
            return
        self.checking, self.check_text = True, "Checking…"
        self._update_can_accept()

        def run() -> None:
            try:
                self._checked.emit(generation, True, self._checker(source))
            except OstafError as exc:
                self._checked.emit(generation, False, str(exc))
            except Exception as exc:  # a checker bug must not leave "Checking…" forever
                self._checked.emit(generation, False, f"cannot check this model ({exc})")

        threading.Thread(target=run, name="ostaf-model-check", daemon=True).start()

    def result(self) -> Settings:
        return replace(
            self._original,
            model_source=self.source(),
            device=self.device,
            precision=self.precision,
            output_dir=self.output_dir.strip(),
            memory_saving=bool(self.memory_saving),
        )

    def _on_checked(self, generation: int, ok: bool, message: str) -> None:
        if generation != self._current:
            return  # an older choice's answer
        self.checking, self.check_ok, self.check_text = False, ok, message
        self._update_can_accept()

    def _on_change(self, name: str, value: object) -> None:
        if name in ("model_kind", "folder", "file"):
            self.check()
        elif name in ("device", "precision"):
            self._update_can_accept()

    def _update_can_accept(self) -> None:
        self.can_accept = self.check_ok and not self.checking
