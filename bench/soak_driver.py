"""The soak's hands: drives the real app (`run_app`, real backend, real window) the way a user
would, chosen at random from a seed — tuning runs of every kind (some cancelled), renders with
one to three attributes, λ slider moves, prompt edits, the library, dialogs (modal and not),
batch exports, window resizes — and writes one JSON line per event to a file that the parent
(`bench/soak.py`) watches. Run as `python -m bench.soak --child …`; not a test."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw
from PySide6.QtCore import QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow

HEARTBEAT_MS = 5_000  # the parent calls the GUI hung when these stop
POLL_MS = 200
WAIT_LIMIT_S = 900.0  # a job that has not finished by then is reported as stuck
MODAL_LIMIT_S = 60.0  # a modal dialog still open by then is reported as stuck
KINDS = ("appearance", "shape", "style", "all")  # "all": Learn all three
PROMPTS = (
    "a sks heart, flat style, on a white background",
    "a red striped sks, outline style, on a white background",
    "a blue dotted circle, sks style, on a white background",
    "a green sks star",
)


class EventLog:
    """Appends one JSON object per line, flushed, so a crash loses nothing written before."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, event: str, **fields: object) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"t": round(time.time(), 3), "event": event, **fields}) + "\n")


def own_pictures(folder: Path) -> list[Path]:
    """A few pictures of the user's own (not the sample): other sizes, off-centre, rotated."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (size, colour, box) in enumerate(
        (
            (300, "red", (40, 60, 200, 220)),
            (180, "blue", (90, 20, 170, 110)),
            (512, "green", (100, 150, 420, 470)),
        )
    ):
        image = Image.new("RGB", (size, size), "white")
        ImageDraw.Draw(image).ellipse(box, fill=colour, outline="black", width=4)
        path = folder / f"own-{index}.png"
        image.rotate(15 * index, fillcolor="white").save(path)
        paths.append(path)
    return paths


class SoakDriver(QObject):
    """One session of use: actions until `session_s` has passed, then quits the window."""

    def __init__(
        self, window: MainWindow, vm: MainViewModel, log: EventLog, seed: int, session_s: float
    ) -> None:
        super().__init__(window)
        self.window, self.vm, self.log = window, vm, log
        self.random = random.Random(seed)
        self.ends_at = time.monotonic() + session_s
        self.pictures = own_pictures(log.path.parent / "pictures")
        self.heartbeat = QTimer(self)
        self.heartbeat.timeout.connect(self._beat)
        self.heartbeat.start(HEARTBEAT_MS)
        self._modal_since: float | None = None
        self._last_error = ""
        self.modal_closer = QTimer(self)
        self.modal_closer.timeout.connect(self._close_modal)
        self.modal_closer.start(700)
        self.poll = QTimer(self)
        self.poll.timeout.connect(self._check)
        self._waiting: tuple[str, Callable[[], bool], float] | None = None
        self._then: Callable[[], None] | None = None
        self.log.write("session-start", seed=seed, session_s=session_s)
        self._wait_for("model", lambda: vm.session.model is not None, self._begin)

    def _beat(self) -> None:
        self.log.write("tick")
        error = self.vm.session.error
        text = "" if error is None else f"{error.error_type}: {error.message}"
        if text and text != self._last_error:
            self.log.write("error", text=text)
        self._last_error = text

    # -- waiting without blocking the event loop -------------------------------------------
    def _wait_for(self, what: str, done: Callable[[], bool], then: Callable[[], None]) -> None:
        self._waiting = (what, done, time.monotonic() + WAIT_LIMIT_S)
        self._then = then
        self.poll.start(POLL_MS)

    def _check(self) -> None:
        if self._waiting is None:
            return
        what, done, deadline = self._waiting
        if done():
            self.poll.stop()
            self._waiting = None
            then, self._then = self._then, None
            if then is not None:
                then()
        elif time.monotonic() > deadline:
            self.log.write("stuck", waiting_for=what, limit_s=WAIT_LIMIT_S)
            self.poll.stop()
            self._waiting = None
            self.vm.tuning.cancel()
            self._next()

    def _next(self) -> None:
        if time.monotonic() > self.ends_at:
            if self.random.random() < 0.4:  # quit during a run (it asks first)
                self.window.tuning.tune_button.click()
                QTimer.singleShot(self.random.randint(1000, 6000), self, self._quit)
            else:
                self._quit()
            return
        QTimer.singleShot(self.random.randint(100, 1500), self, self._act)

    # -- the session ----------------------------------------------------------------------
    def _begin(self) -> None:
        self.log.write("model-loaded", model=str(self.vm.session.model))
        resume = self.vm.resume
        if resume.visible:  # the last session was killed or quit during a run
            if resume.can_resume and self.random.random() < 0.7:
                self.log.write("resume")
                resume.resume()
                self._wait_for("resumed run", lambda: not self.vm.tuning.running, self._next)
                return
            self.log.write("discard")
            resume.discard()
        if self.vm.projects.current is None and not self.vm.projects.open("soak"):
            self.vm.projects.create("Soak")
        self._next()

    def _act(self) -> None:
        library = self.vm.library.rows
        actions: list[tuple[float, Callable[[], None]]] = [
            (4.0, self.tune),
            (2.5 if library else 0.0, self.render),
            (2.0 if library else 0.0, self.move_sliders),
            (1.5, self.dialog),
            (1.0 if library else 0.0, self.library_work),
            (0.5, self.resize),
            (0.6 if library else 0.0, self.batch),
        ]
        weights = [weight for weight, _ in actions]
        action = self.random.choices([act for _, act in actions], weights)[0]
        action()

    def tune(self) -> None:
        vm, controls = self.vm, self.window.tuning
        if self.random.random() < 0.6:
            vm.reference.open_sample()
        else:
            vm.reference.open_image(self.random.choice(self.pictures))
        if self.random.random() < 0.3:
            self._mask_and_crop()
        kind = self.random.choice(KINDS)
        picker = controls.picker
        cards = {str(k): card for k, card in picker.cards.items()} | {"all": picker.all_three}
        cards[kind].radio.click()
        controls.picker.preset.setCurrentIndex(0 if self.random.random() < 0.8 else 1)
        if self.random.random() < 0.2:
            controls.picker.advanced_toggle.click()
        controls.tune_button.click()
        cancel_after = self.random.uniform(2, 20) if self.random.random() < 0.2 else None
        self.log.write("tune", kind=kind, steps=vm.tuning.steps, cancel_after_s=cancel_after)
        if cancel_after is not None:
            QTimer.singleShot(int(cancel_after * 1000), self, self.window.shortcuts.cancel.trigger)
        started = time.monotonic()

        def finished() -> None:
            self.log.write("tuned", kind=kind, seconds=round(time.monotonic() - started, 1))
            self._next()

        self._wait_for(f"{kind} tuning", lambda: not vm.tuning.running, finished)

    def _mask_and_crop(self) -> None:
        """Paint a round mask somewhere on the reference, as the brush does, and half the
        time crop to it (Shift+C)."""
        reference = self.vm.reference
        mask = reference.ensure_mask()
        if mask is None:
            return
        side = min(mask.width(), mask.height())
        radius = side * self.random.uniform(0.05, 0.3)
        centre = QPointF(mask.width() * self.random.random(), mask.height() * self.random.random())
        painter = QPainter(mask)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255))
        painter.drawEllipse(centre, radius, radius)
        painter.end()
        reference.mask_painted()
        cropped = self.random.random() < 0.5
        if cropped:
            self.window.shortcuts.crop_to_mask.trigger()
        self.log.write("mask", radius=round(radius), cropped=cropped)

    def _apply_some(self) -> None:
        rows = self.vm.library.rows
        chosen = self.random.sample(rows, min(len(rows), self.random.randint(1, 3)))
        for entry in self.vm.library.applied:
            self.vm.library.set_applied(entry.id, False)
        for row in chosen:
            self.vm.library.set_applied(row.id, True)

    def render(self) -> None:
        self._apply_some()
        panel = self.window.render_panel
        panel.prompt.setPlainText(self.random.choice(PROMPTS))
        for slider in panel.sliders():
            slider.slider.setValue(self.random.randint(0, slider.slider.maximum()))
        panel.render_button.click()
        words = self.vm.words
        if words.clash and self.random.random() < 0.7:  # two ticked attributes share a word
            self.log.write("word", action="give-own-word")
            words.give_own_word(words.clash_id)
            self._wait_for("word change", lambda: not words.renaming, self._next)
            return
        self.log.write("render", attributes=len(self.vm.library.applied))
        self._wait_for("render", lambda: not self.vm.rendering.rendering, self._next)

    def move_sliders(self) -> None:
        self._apply_some()
        panel = self.window.render_panel
        for slider in panel.sliders():
            for _ in range(self.random.randint(3, 12)):
                slider.slider.setValue(self.random.randint(0, slider.slider.maximum()))
        panel.prompt.setPlainText(self.random.choice(PROMPTS))
        self.log.write("sliders", sliders=len(panel.sliders()))
        self._wait_for("preview", lambda: not self.vm.rendering.preview_pending, self._next)

    def dialog(self) -> None:
        keys = self.window.shortcuts
        name, action = self.random.choice(
            (
                ("settings", keys.settings),
                ("shortcuts", keys.help),
                ("about", keys.about),
                ("trash", keys.trash),
                ("lora", keys.export_lora),
            )
        )
        self.log.write("dialog", name=name)
        if action.isEnabled():
            action.trigger()  # a modal one returns when the closer has closed it
        QTimer.singleShot(self.random.randint(300, 1500), self, self._close_dialogs)
        self._wait_for("dialogs closed", lambda: self._open_dialogs() == [], self._next)

    def library_work(self) -> None:
        library = self.vm.library
        row = self.random.choice(library.rows)
        library.selected_id = row.id
        library.search_text = self.random.choice((row.name[:3], "#none", "e"))
        library.search_text = ""
        action = "select-search"
        if library.trashed and self.random.random() < 0.5:
            action = "restore"
            library.restore(self.random.choice(library.trashed).id)
        elif self.random.random() < 0.2:
            action = "change-word"
            self.vm.words.give_own_word(row.id)
        elif len(library.rows) > 3 and self.random.random() < 0.3:
            action = "delete"  # asks first: the closer answers Yes
            library.selected_id = self.random.choice(library.rows).id
            self.window.shortcuts.delete.trigger()
        self.log.write("library", action=action)
        self._next()

    def resize(self) -> None:
        width, height = self.random.randint(1157, 1700), self.random.randint(688, 1050)
        self.window.resize(width, height)
        self.log.write("resize", size=[width, height])
        self._next()

    def batch(self) -> None:
        self.window.shortcuts.batch.trigger()
        dialog = self.window.batch_dialog
        if dialog is None:
            self._next()
            return
        self._apply_some()
        dialog.prompts.setPlainText("\n".join(self.random.sample(PROMPTS, 2)))
        dialog.seeds.setText("0-1")
        dialog.start.click()
        self.log.write("batch")

        def close() -> None:
            dialog.close()
            self._next()

        self._wait_for("batch", lambda: not self.vm.batch.running, close)

    # -- dialogs --------------------------------------------------------------------------
    def _open_dialogs(self) -> list[QDialog]:
        return [
            widget
            for widget in QApplication.topLevelWidgets()
            if isinstance(widget, QDialog) and widget.isVisible()
        ]

    def _close_dialogs(self) -> None:
        for dialog in self._open_dialogs():
            dialog.reject()

    def _close_modal(self) -> None:
        """Answer a modal dialog as a user would after a moment: Yes to a question (quitting
        during a run, moving to the trash), otherwise close it."""
        modal = QApplication.activeModalWidget()
        if modal is None:
            self._modal_since = None
            return
        if self._modal_since is None:
            self._modal_since = time.monotonic()
        elif time.monotonic() - self._modal_since > MODAL_LIMIT_S:
            self.log.write("stuck", waiting_for=f"modal {type(modal).__name__} to close")
        if isinstance(modal, QMessageBox):
            buttons = modal.buttons()
            yes = modal.button(QMessageBox.StandardButton.Yes)
            button = yes or modal.defaultButton() or (buttons[0] if buttons else None)
            if button is not None:
                button.click()
                return
        if isinstance(modal, QDialog):
            modal.reject()

    def _quit(self) -> None:
        if sys.platform != "win32" and self.random.random() < 0.3:
            # As a logout would: the app quits without asking, the session must end with 0.
            self.log.write("quit", tuning=self.vm.tuning.running, by="SIGTERM")
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.log.write("quit", tuning=self.vm.tuning.running)
        self.window.close()  # a run in progress asks first: the closer answers Yes


def drive(events: Path, seed: int, session_s: float) -> Callable[[MainWindow, MainViewModel], None]:
    """The `driver` argument of `run_app` for one soak session."""
    log = EventLog(events)

    def attach(window: MainWindow, vm: MainViewModel) -> None:
        SoakDriver(window, vm, log, seed, session_s)

    return attach
