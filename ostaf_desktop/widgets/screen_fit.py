"""Dialogs stay on the screen: once shown, and whenever they grow (e.g. a message line that
wraps), the app's dialogs move, and if need be shrink, into the available area of their screen.

Each dialog does it in its own show and resize handlers (`ScreenFittedDialog`). An event filter
on the whole application did it before: every event of every object then passed through Python,
and a garbage collection that started inside that filter deleted a Qt object mid-event.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QTimer
from PySide6.QtGui import QGuiApplication, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QDialog, QWidget


def fitted(frame: QRect, area: QRect) -> QRect:
    """`frame` moved (and shrunk where it is larger) so that it lies inside `area`."""
    width, height = min(frame.width(), area.width()), min(frame.height(), area.height())
    left = min(max(frame.left(), area.left()), area.left() + area.width() - width)
    top = min(max(frame.top(), area.top()), area.top() + area.height() - height)
    return QRect(left, top, width, height)


def fit_to_screen(window: QWidget) -> None:
    """Move `window` (its frame, title bar included) inside its screen's available area."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None or not window.isWindow():
        return
    area, frame = screen.availableGeometry(), window.frameGeometry()
    target = fitted(frame, area)
    if target == frame:
        return
    extra_w, extra_h = frame.width() - window.width(), frame.height() - window.height()
    if target.size() != frame.size():
        window.resize(target.width() - extra_w, target.height() - extra_h)
    window.move(target.topLeft())  # move() places the frame's top-left corner


class ScreenFittedDialog(QDialog):
    """A dialog that keeps itself inside its screen when it opens and when it grows."""

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_soon()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.isVisible():
            self._fit_soon()

    def _fit_soon(self) -> None:
        # Later, not now: Qt places a dialog over its parent after the Show event.
        QTimer.singleShot(0, self, self._fit)

    def _fit(self) -> None:
        fit_to_screen(self)
