"""Refuse to start on a PySide6 that corrupts the reference count of None where that is fatal.

PySide6-Essentials 6.12.0 drops one reference to `None` on every call of a Qt method that
returns nothing (`QPainterPath.lineTo`, `QPainter.drawPath`, `setPen`, ...). On Python 3.11
`None` is freed when its count reaches zero and the process dies ("none_dealloc: deallocating
None") minutes into a tuning run, while the loss curve repaints. From Python 3.12 on `None` is
immortal and the drift is harmless. The check runs before any window exists: by version, and by
a short probe that also catches releases not known here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

KNOWN_BAD_PYSIDE = frozenset({"6.12.0"})
GOOD_PYSIDE = "6.11.3"  # the version requirements.txt pins, tested without drift
FIX_COMMAND = f'python -m pip install "PySide6-Essentials=={GOOD_PYSIDE}"'
START_PROBE_CALLS = 200  # ~1 ms; a bad release shows a drift of exactly this many


def none_is_immortal(
    version: tuple[int, ...] = (sys.version_info.major, sys.version_info.minor),
) -> bool:
    """True where Python never frees None (3.12+, PEP 683), so a lost reference cannot kill."""
    return version[:2] >= (3, 12)


def none_refcount_drift(call: Callable[[], object], repeat: int = 1000) -> int:
    """How far `sys.getrefcount(None)` moves over `repeat` calls (0 on a sound PySide6).
    Meaningful where None is mortal (up to 3.11); from 3.12 a drift is harmless."""
    call()  # the first call may fill caches; only the steady state matters
    before = sys.getrefcount(None)
    for _ in range(repeat):
        call()
    drift = sys.getrefcount(None) - before
    if drift < 0:
        _GIVEN_BACK.extend([None] * -drift)  # repay what the probe took, so it cannot kill
    return drift


_GIVEN_BACK: list[None] = []


def probe_drift(repeat: int = START_PROBE_CALLS) -> int:
    """The drift of `QPainterPath.lineTo`, the call the loss curve makes most (no QApplication)."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QPainterPath

    path, point = QPainterPath(), QPointF(1, 2)
    return none_refcount_drift(lambda: path.lineTo(point), repeat)


@dataclass(frozen=True)
class QtRuntime:
    """What decides whether the app can run: the versions and the probe's result."""

    python: str
    pyside: str
    immortal_none: bool
    drift: int = 0

    @classmethod
    def current(cls, probe: bool = True) -> QtRuntime:
        import PySide6

        return cls(
            python=".".join(str(part) for part in sys.version_info[:3]),
            pyside=PySide6.__version__,
            immortal_none=none_is_immortal(),
            drift=probe_drift() if probe and not none_is_immortal() else 0,
        )


def refusal(runtime: QtRuntime) -> str | None:
    """A message naming the versions and the fix, or None when this combination is safe."""
    if runtime.immortal_none:
        return None
    if runtime.pyside not in KNOWN_BAD_PYSIDE and runtime.drift == 0:
        return None
    if runtime.drift:
        evidence = f"it lost {-runtime.drift} references to None in {START_PROBE_CALLS} calls"
    else:
        evidence = "this release loses a reference to None on every Qt drawing call"
    return (
        f"OSTAF cannot run with PySide6 {runtime.pyside} on Python {runtime.python}: {evidence}, "
        f"which makes Python {runtime.python} crash within minutes. Install the tested version "
        f"with:  {FIX_COMMAND}  (or use Python 3.12 or newer)."
    )


def can_show_dialog(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether a message box can appear: a screen exists and Qt is not told to draw off-screen."""
    qpa = environ.get("QT_QPA_PLATFORM", "")
    if qpa.startswith(("offscreen", "minimal", "vnc")):
        return False
    if platform.startswith("linux"):
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


def show_refusal(message: str) -> None:
    """The message on stderr always, and in a dialog when a screen is available."""
    print(message, file=sys.stderr, flush=True)
    if not can_show_dialog():
        return
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication.instance() or QApplication([sys.argv[0]])
    # A handful of Qt calls cannot use up None's references; the danger is thousands.
    QMessageBox.critical(None, "OSTAF cannot start", message)
    del app
