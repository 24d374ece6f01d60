"""The window's menus and keyboard shortcuts for the common actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from ostaf_desktop.icons import icon

if TYPE_CHECKING:
    from ostaf_desktop.widgets.main_window import MainWindow

SHORTCUT_HELP = """Ctrl+N  new project
Ctrl+O  open a reference image
Ctrl+Enter  tune · Esc  cancel tuning
Ctrl+R  render · Ctrl+D  random seed · Ctrl+S  save the selected result
F2  rename the attribute · Del  delete the attribute
H  move · C  crop · B  mask brush · E  mask eraser · [ ]  brush size
F  fit · +  zoom in · -  zoom out
Ctrl+,  settings · Ctrl+Q  quit"""


def make_action(
    parent: QWidget,
    text: str,
    shortcut: str | QKeySequence.StandardKey | None = None,
    icon_name: str = "",
) -> QAction:
    """A window-wide action; its shortcut shows in the menu."""
    action = QAction(text, parent)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if icon_name:
        action.setIcon(icon(icon_name))
    parent.addAction(action)
    return action


class Shortcuts:
    """Creates the menu bar of `window`; every action is also reachable by keyboard."""

    def __init__(self, window: MainWindow) -> None:
        vm = window.vm
        menu = window.menuBar()

        file = menu.addMenu("&File")
        self.new_project = make_action(window, "&New project…", "Ctrl+N", "new-project")
        self.open_image = make_action(window, "&Open reference image…", "Ctrl+O", "open-image")
        self.sample = make_action(window, "Use the &sample picture", None, "sample")
        self.settings = make_action(window, "&Settings…", "Ctrl+,", "settings")
        self.quit = make_action(window, "&Quit", "Ctrl+Q")
        for item in (
            self.new_project,
            self.open_image,
            self.sample,
            None,
            self.settings,
            None,
            self.quit,
        ):
            file.addAction(item) if item is not None else file.addSeparator()

        learn = menu.addMenu("&Attribute")
        self.tune = make_action(window, "&Tune", "Ctrl+Return", "tune")
        self.cancel = make_action(window, "&Cancel tuning", "Esc", "cancel")
        self.rename = make_action(window, "&Rename…", "F2", "rename")
        self.delete = make_action(window, "&Delete…", "Del", "delete")
        for item in (self.tune, self.cancel, None, self.rename, self.delete):
            learn.addAction(item) if item is not None else learn.addSeparator()

        render = menu.addMenu("&Render")
        self.render = make_action(window, "&Render", "Ctrl+R", "render")
        self.dice = make_action(window, "Random &seed", "Ctrl+D", "dice")
        self.save = make_action(window, "&Save the selected result…", "Ctrl+S", "save")
        for item in (self.render, self.dice, self.save):
            render.addAction(item)

        view = menu.addMenu("&View")
        self.fit = make_action(window, "&Fit", "F", "fit")
        self.zoom_in = make_action(window, "Zoom &in", "+", "zoom-in")
        self.zoom_out = make_action(window, "Zoom &out", "-", "zoom-out")
        self.tools = {
            "pan": make_action(window, "&Move", "H", "pan"),
            "crop": make_action(window, "&Crop", "C", "crop"),
            "brush": make_action(window, "Mask &brush", "B", "brush"),
            "eraser": make_action(window, "Mask &eraser", "E", "eraser"),
        }
        self.smaller = make_action(window, "Smaller brush", "[")
        self.larger = make_action(window, "Larger brush", "]")
        for item in (
            self.fit,
            self.zoom_in,
            self.zoom_out,
            None,
            *self.tools.values(),
            self.smaller,
            self.larger,
        ):
            view.addAction(item) if item is not None else view.addSeparator()

        help_menu = menu.addMenu("&Help")
        self.help = make_action(window, "&Keyboard shortcuts", "F1")
        self.logs = make_action(window, "Open the &log folder")
        self.about = make_action(window, "&About OSTAF")
        for item in (self.help, self.logs, self.about):
            help_menu.addAction(item)

        canvas = window.reference.canvas
        self.new_project.triggered.connect(window.projects.create_project)
        self.open_image.triggered.connect(window.reference.choose_image)
        self.sample.triggered.connect(vm.reference.open_sample)
        self.settings.triggered.connect(window.open_settings)
        self.quit.triggered.connect(window.close)
        self.tune.triggered.connect(vm.tuning.tune)
        self.cancel.triggered.connect(vm.tuning.cancel)
        self.rename.triggered.connect(window.library.rename)
        self.delete.triggered.connect(window.library.delete)
        self.render.triggered.connect(vm.rendering.render)
        self.dice.triggered.connect(vm.rendering.roll_seed)
        self.save.triggered.connect(window.results.save_current)
        self.fit.triggered.connect(canvas.fit)
        self.zoom_in.triggered.connect(lambda: canvas.zoom_by(1.25))
        self.zoom_out.triggered.connect(lambda: canvas.zoom_by(0.8))
        for name, tool in self.tools.items():
            tool.triggered.connect(lambda _=False, n=name: setattr(vm.reference, "tool", n))
        self.smaller.triggered.connect(
            lambda: setattr(vm.reference, "brush_size", max(4, int(vm.reference.brush_size * 0.8)))
        )
        self.larger.triggered.connect(
            lambda: setattr(
                vm.reference, "brush_size", min(400, int(vm.reference.brush_size * 1.25))
            )
        )
        self.help.triggered.connect(window.show_shortcuts)
        self.logs.triggered.connect(window.open_log_folder)
        self.about.triggered.connect(window.show_about)
