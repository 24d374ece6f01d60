"""App-wide state every panel shares: settings, the base model's status, errors and the
one-line status message."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ostaf.errors import SettingsError
from ostaf.models.demo_model import is_demo_source
from ostaf.paths import settings_file
from ostaf.requests import ModelChoice
from ostaf.settings import Settings, load_settings, save_settings
from ostaf_desktop.backend import ModelInfo
from ostaf_desktop.error_report import ErrorReport
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.prompt_examples import prompt_examples
from ostaf_desktop.ui_state import UiState, load_ui_state, save_ui_state

log = logging.getLogger(__name__)


class SessionViewModel(ViewModel):
    """Settings, model status, the current error and status message."""

    settings = Observable(Settings())
    model = Observable[ModelInfo | None](None)
    model_status = Observable("Starting…")
    model_loading = Observable(False)
    model_failed = Observable(False)
    show_demo_hint = Observable(False)
    error = Observable[ErrorReport | None](None)
    status_message = Observable("")
    examples = Observable(prompt_examples(demo=True))  # for the model chosen in Settings

    # (title, text): something the user should read now (the window shows it in a dialog).
    notice = Signal(str, str)

    def __init__(self, ui_state: UiState | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ui = ui_state if ui_state is not None else load_ui_state()
        try:
            self.settings = load_settings()
        except SettingsError as exc:
            self.report(exc)
            _keep_aside(settings_file())
        self._update_hint()

    # -- errors and messages -------------------------------------------------------------
    def report(self, error: BaseException | ErrorReport, doing: str = "") -> None:
        """Show an error in the banner (and log the traceback)."""
        if isinstance(error, BaseException):
            log.error("%s", error, exc_info=error)
            error = ErrorReport.from_exception(error, doing)
        else:
            log.error("%s\n%s", error.message, error.details)
        self.error = error

    def dismiss_error(self) -> None:
        self.error = None

    def notify(self, message: str) -> None:
        self.status_message = message

    def inform(self, title: str, text: str, status: str = "") -> None:
        """Show `text` in a dialog, and `status` (else its first line) in the status bar."""
        self.status_message = status or (text.splitlines()[0] if text else "")
        self.notice.emit(title, text)

    # -- settings ------------------------------------------------------------------------
    @property
    def uses_demo_model(self) -> bool:
        """The base model chosen in Settings is one of the built-in demo models."""
        return is_demo_source(self.settings.model_source)

    def model_choice(self) -> ModelChoice:
        s = self.settings
        return ModelChoice(s.model_source, s.device, s.precision)

    def update_settings(self, **changes: Any) -> bool:
        """Change and save settings; False (with the error shown) when they cannot be saved."""
        new = replace(self.settings, **changes)
        try:
            save_settings(new)
        except (SettingsError, OSError) as exc:
            self.report(exc)
            return False
        self.settings = new
        self._update_hint()
        return True

    def save_ui_state(self) -> None:
        save_ui_state(self.ui)

    # -- the demo hint -------------------------------------------------------------------
    def dismiss_demo_hint(self) -> None:
        self.ui.demo_hint_dismissed = True
        save_ui_state(self.ui)
        self._update_hint()

    def _update_hint(self) -> None:
        self.examples = prompt_examples(demo=self.uses_demo_model)
        self.show_demo_hint = self.uses_demo_model and not self.ui.demo_hint_dismissed

    # -- model status --------------------------------------------------------------------
    def model_loading_started(self, source: str) -> None:
        self.model_loading, self.model_failed = True, False
        self.model = None
        self.model_status = "Loading model…" if is_demo_source(source) else f"Loading {source}…"

    def model_loaded(self, info: ModelInfo) -> None:
        self.model = info
        self.model_loading = False
        # The family of a user's model (the demo model's layout is no published family).
        family = "" if info.is_demo else f" · {info.family}"
        self.model_status = f"{info.name}{family} · {info.placement}"

    def model_load_failed(self, error: ErrorReport | None) -> None:
        self.model_loading, self.model_failed = False, True
        self.model_status = "No model loaded: choose one in Settings"
        if error is not None:
            self.report(error)


def _keep_aside(path: Path) -> None:
    """Move a damaged settings file out of the way so that saving never overwrites it."""
    if path.is_file():
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.replace(aside)
            log.warning("kept the damaged settings file as %s", aside)
        except OSError as exc:
            log.warning("could not move the damaged settings file aside: %s", exc)
