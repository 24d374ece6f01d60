"""The window's menus and keyboard shortcuts for the common actions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from ostaf_desktop.icons import icon

if TYPE_CHECKING:
    from ostaf_desktop.widgets.main_window import MainWindow

SHORTCUT_HELP = """Ctrl+N  new project
Ctrl+O  open a reference image · Ctrl+Shift+O  open an image's settings
Ctrl+Enter  tune · Esc  cancel tuning
Ctrl+R  render · Ctrl+D  random seed · Ctrl+S  save the selected result
Ctrl+Shift+R  re-use the selected result's settings · Ctrl+B  batch export
Ctrl+F  search the library · F2  rename the attribute · Del  delete the attribute
Ctrl+I  import attribute files · Ctrl+Shift+I  import from another project
Ctrl+E  export the attribute file · Ctrl+Shift+E  export as LoRA · Ctrl+Shift+T  trash
H  move · C  crop · B  mask brush · E  mask eraser · [ ]  brush size
Shift+C  crop to the mask (frames the painted subject)
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
        self.open_settings = make_action(
            window, "Open &image settings…", "Ctrl+Shift+O", "image-settings"
        )
        self.sample = make_action(window, "Use the &sample picture", None, "sample")
        self.settings = make_action(window, "&Settings…", "Ctrl+,", "settings")
        self.quit = make_action(window, "&Quit", "Ctrl+Q")
        for item in (
            self.new_project,
            self.open_image,
            self.open_settings,
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
        self.find = make_action(window, "&Find in the library", "Ctrl+F", "search")
        self.rename = make_action(window, "&Rename…", "F2", "rename")
        self.delete = make_action(window, "&Delete…", "Del", "delete")
        self.trash = make_action(window, "T&rash…", "Ctrl+Shift+T", "trash")
        self.import_files = make_action(window, "&Import attribute files…", "Ctrl+I", "import")
        self.import_project = make_action(
            window, "Import from another &project…", "Ctrl+Shift+I", "folder"
        )
        self.export_file = make_action(window, "&Export attribute file…", "Ctrl+E", "export")
        self.export_lora = make_action(window, "Export as &LoRA…", "Ctrl+Shift+E", "lora")
        for item in (
            self.tune,
            self.cancel,
            None,
            self.find,
            self.rename,
            self.delete,
            self.trash,
            None,
            self.import_files,
            self.import_project,
            self.export_file,
            self.export_lora,
        ):
            learn.addAction(item) if item is not None else learn.addSeparator()

        render = menu.addMenu("&Render")
        self.render = make_action(window, "&Render", "Ctrl+R", "render")
        self.dice = make_action(window, "Random &seed", "Ctrl+D", "dice")
        self.save = make_action(window, "&Save the selected result…", "Ctrl+S", "save")
        self.reuse = make_action(
            window, "&Use the selected result's settings", "Ctrl+Shift+R", "image-settings"
        )
        self.batch = make_action(window, "&Batch export…", "Ctrl+B", "batch")
        for item in (self.render, self.dice, self.save, self.reuse, None, self.batch):
            render.addAction(item) if item is not None else render.addSeparator()

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
        self.crop_to_mask = make_action(window, "Crop to the &mask", "Shift+C", "crop-to-mask")
        self.smaller = make_action(window, "Smaller brush", "[")
        self.larger = make_action(window, "Larger brush", "]")
        for item in (
            self.fit,
            self.zoom_in,
            self.zoom_out,
            None,
            *self.tools.values(),
            self.crop_to_mask,
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
        actions = window.library_actions
        self.new_project.triggered.connect(window.projects.create_project)
        self.open_image.triggered.connect(window.reference.choose_image)
        self.open_settings.triggered.connect(window.open_image_settings)
        self.sample.triggered.connect(vm.reference.open_sample)
        self.settings.triggered.connect(window.open_settings)
        self.quit.triggered.connect(window.close)
        self.tune.triggered.connect(vm.tuning.tune)
        self.cancel.triggered.connect(vm.tuning.cancel)
        self.find.triggered.connect(window.library.focus_search)
        self.rename.triggered.connect(actions.rename)
        self.delete.triggered.connect(actions.delete)
        self.trash.triggered.connect(actions.show_trash)
        self.import_files.triggered.connect(actions.import_files)
        self.import_project.triggered.connect(actions.import_from_project)
        self.export_file.triggered.connect(actions.export_file)
        self.export_lora.triggered.connect(actions.export_lora)
        self.render.triggered.connect(vm.rendering.render)
        self.dice.triggered.connect(vm.rendering.roll_seed)
        self.save.triggered.connect(window.results.save_current)
        self.reuse.triggered.connect(window.results.reuse_current)
        self.batch.triggered.connect(window.open_batch)
        self.fit.triggered.connect(canvas.fit)
        self.zoom_in.triggered.connect(lambda: canvas.zoom_by(1.25))
        self.zoom_out.triggered.connect(lambda: canvas.zoom_by(0.8))
        for name, tool in self.tools.items():
            tool.triggered.connect(lambda _=False, n=name: setattr(vm.reference, "tool", n))
        self.crop_to_mask.triggered.connect(vm.reference.crop_to_mask)
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

        library = window.library
        library.import_button.setMenu(_menu(window, self.import_files, self.import_project))
        library.export_button.setMenu(_menu(window, self.export_file, self.export_lora))
        library.trash_button.clicked.connect(actions.show_trash)
        library.rename_button.clicked.connect(actions.rename)
        library.delete_button.clicked.connect(actions.delete)
        library.files_dropped.connect(vm.transfer.import_files)


def _menu(parent: QWidget, *actions: QAction) -> QMenu:
    menu = QMenu(parent)
    for action in actions:
        menu.addAction(action)
    return menu
