"""The centre of the window: a tool bar over the reference canvas, and what the app thinks of
the image (size, upscaling, cropping) under it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ostaf_desktop.binding import assign_when_checked, bind, bind_to
from ostaf_desktop.viewmodels.reference import IMAGE_FILTER, TOOLS, ReferenceViewModel
from ostaf_desktop.widgets.layout import ElidedLabel, Section, label, tool_button
from ostaf_desktop.widgets.reference_canvas import ReferenceCanvas

TOOL_BUTTONS = {
    "pan": ("pan", "Move and zoom (H) — wheel zooms, double-click fits"),
    "crop": (
        "crop",
        "Crop (C) — drag a rectangle; double-click removes it; crop close to the subject",
    ),
    "brush": ("brush", "Mask brush (B) — paint the region that should drive tuning"),
    "eraser": ("eraser", "Mask eraser (E)"),
}


class ReferencePanel(Section):
    """Open/sample buttons, view and mask tools, the canvas and the image feedback."""

    def __init__(self, vm: ReferenceViewModel, parent: QWidget | None = None) -> None:
        super().__init__("Reference image", parent)
        self.vm = vm
        self.canvas = ReferenceCanvas(vm)
        self.open_button = self.add_header_button(
            tool_button("open-image", "Open an image (Ctrl+O)")
        )
        self.sample_button = self.add_header_button(
            tool_button("sample", "Use the built-in sample picture")
        )
        # In the header: the tool row has no room left on a 1280-pixel screen.
        self.crop_to_mask = self.add_header_button(
            tool_button(
                "crop-to-mask",
                "Crop to the mask (Shift+C) — a square around the painted subject; a subject "
                "that fills more of the picture carries over further",
            )
        )
        tools = QHBoxLayout()
        tools.setSpacing(2)
        self.tool_group = QButtonGroup(self)
        self.tool_buttons: dict[str, QToolButton] = {}
        for name in TOOLS:
            icon_name, tip = TOOL_BUTTONS[name]
            button = tool_button(icon_name, tip, checkable=True)
            self.tool_group.addButton(button)
            self.tool_buttons[name] = button
            tools.addWidget(button)
            button.toggled.connect(assign_when_checked(vm, "tool", name))
        self.brush_size = QSlider(Qt.Orientation.Horizontal)
        self.brush_size.setRange(4, 400)
        self.brush_size.setMinimumWidth(40)
        self.brush_size.setMaximumWidth(110)
        self.brush_size.setToolTip("Brush size ([ and ])")
        self.clear_mask = tool_button("clear-mask", "Clear the mask")
        self.clear_crop = tool_button("close", "Remove the crop")
        self.fit_button = tool_button("fit", "Fit the image in the view (F)")
        self.zoom_in = tool_button("zoom-in", "Zoom in (+)")
        self.zoom_out = tool_button("zoom-out", "Zoom out (-)")
        tools.addSpacing(6)
        tools.addWidget(label("Brush", "hint"))
        tools.addWidget(self.brush_size)
        tools.addWidget(self.clear_mask)
        tools.addWidget(self.clear_crop)
        tools.addStretch(1)
        for button in (self.zoom_out, self.zoom_in, self.fit_button):
            tools.addWidget(button)
        # Elided in the middle: the end of the line is the image's size, which matters most.
        self.info = ElidedLabel(role="hint", mode=Qt.TextElideMode.ElideMiddle)
        self.mask_state = ElidedLabel(role="hint")
        self.notes = ElidedLabel(role="warning")  # one line: the canvas keeps its height
        footer = QVBoxLayout()
        footer.setSpacing(2)
        status = QHBoxLayout()
        status.setSpacing(12)
        status.addWidget(self.info, 1)
        status.addWidget(self.mask_state)
        footer.addLayout(status)
        footer.addWidget(self.notes)
        self.body.addLayout(tools)
        self.body.addWidget(self.canvas, 1)
        self.body.addLayout(footer)

        self.open_button.clicked.connect(self.choose_image)
        self.sample_button.clicked.connect(vm.open_sample)
        self.clear_mask.clicked.connect(vm.clear_mask)
        self.clear_crop.clicked.connect(lambda: vm.set_crop(None))
        self.crop_to_mask.clicked.connect(vm.crop_to_mask)
        self.fit_button.clicked.connect(self.canvas.fit)
        self.zoom_in.clicked.connect(lambda: self.canvas.zoom_by(1.25))
        self.zoom_out.clicked.connect(lambda: self.canvas.zoom_by(0.8))
        bind(vm, "brush_size", self.brush_size)
        bind_to(vm, "info", self.info.setText, self)
        bind_to(vm, "tool", self._show_tool, self)
        bind_to(vm, "notes", self._show_notes, self)
        bind_to(vm, "has_mask", self._show_mask_state, self)
        bind_to(vm, "crop", lambda _: self._show_mask_state(vm.has_mask), self)
        bind_to(vm, "image", lambda image: self._enable_tools(image is not None), self)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a reference image", "", IMAGE_FILTER)
        if path:
            self.vm.open_image(Path(path))

    def _show_tool(self, tool: str) -> None:
        button = self.tool_buttons.get(tool)
        if button is not None and not button.isChecked():
            button.setChecked(True)
        self.brush_size.setEnabled(tool in ("brush", "eraser"))

    def _show_notes(self, notes: tuple[str, ...]) -> None:
        self.notes.setText("   ".join(f"⚠ {n}" for n in notes))
        self.notes.setVisible(bool(notes))

    def _show_mask_state(self, has_mask: bool) -> None:
        parts = []
        if self.vm.crop is not None:
            left, top, right, bottom = self.vm.crop
            parts.append(f"crop {right - left}×{bottom - top}")
        parts.append("masked" if has_mask else "no mask")
        self.mask_state.setText(" · ".join(parts))
        self.mask_state.setToolTip(
            "Only the painted region drives tuning"
            if has_mask
            else "Paint with the mask brush (B) so that only that region drives tuning"
        )
        self.clear_mask.setEnabled(has_mask)
        self.crop_to_mask.setEnabled(has_mask)
        self.clear_crop.setEnabled(self.vm.crop is not None)

    def _enable_tools(self, enabled: bool) -> None:
        for button in (*self.tool_buttons.values(), self.fit_button, self.zoom_in, self.zoom_out):
            button.setEnabled(enabled)
        self.mask_state.setVisible(enabled)
