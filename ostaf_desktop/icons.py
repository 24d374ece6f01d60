"""Icons drawn for the app (resources/icons/*.svg), with Qt's standard icons as a fallback."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

from ostaf.paths import resource

_FALLBACK = {
    "open-image": QStyle.StandardPixmap.SP_DialogOpenButton,
    "save": QStyle.StandardPixmap.SP_DialogSaveButton,
    "delete": QStyle.StandardPixmap.SP_TrashIcon,
    "close": QStyle.StandardPixmap.SP_DialogCloseButton,
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "folder": QStyle.StandardPixmap.SP_DirIcon,
}


@cache
def icon(name: str) -> QIcon:
    """The app's icon called `name` (e.g. "tune", "dice")."""
    path = resource("icons", f"{name}.svg")
    if path.is_file():
        return QIcon(str(path))
    style = QApplication.style()
    if name in _FALLBACK and style is not None:
        return style.standardIcon(_FALLBACK[name])
    return QIcon()
