"""Dialogs stay on the screen: once shown, and whenever they grow (e.g. a message line that
wraps), every dialog of the app is moved, and if need be shrunk, into the available area of
its screen. One event filter on the application does it for all dialogs."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QDialog, QWidget

FILTER_NAME = "ostaf-screen-fit"


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


class ScreenFit(QObject):
    """Keeps every dialog inside the screen (see the module docstring)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        shown = kind == QEvent.Type.Show
        grown = kind == QEvent.Type.Resize and isinstance(watched, QWidget) and watched.isVisible()
        if isinstance(watched, QDialog) and (shown or grown):
            # Later: Qt places a dialog over its parent after the Show event.
            QTimer.singleShot(0, watched, lambda: fit_to_screen(watched))
        return False


def install_screen_fit() -> None:
    """Install the filter on the application once (later calls do nothing)."""
    app = QApplication.instance()
    if app is None or app.findChild(ScreenFit, FILTER_NAME) is not None:
        return
    screen_fit = ScreenFit(app)
    screen_fit.setObjectName(FILTER_NAME)
    app.installEventFilter(screen_fit)
