"""One-line bindings between view-model properties and widgets.

    bind(vm, "steps", steps_spin)                 # two-way through the widget's user property
    bind(vm, "running", cancel_button, "enabled")  # one-way (QWidget.enabled has no notify)
    bind_to(vm, "losses", curve.set_losses)        # any callable, called now and on change

A binding lives as long as the widget: its helper object is the widget's child, so Qt
disconnects it when the widget goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QComboBox, QPlainTextEdit, QWidget

from ostaf_desktop.observable import ViewModel


class _Binding(QObject):
    def __init__(
        self, vm: ViewModel, prop: str, owner: QObject, apply: Callable[[Any], None]
    ) -> None:
        super().__init__(owner)
        self._prop = prop
        self._apply = apply
        vm.changed.connect(self.on_changed)

    @Slot(str, object)
    def on_changed(self, name: str, value: object) -> None:
        if name == self._prop:
            self._apply(value)


def bind_to(vm: ViewModel, prop: str, apply: Callable[[Any], None], owner: QObject) -> None:
    """Call `apply(value)` now and whenever `vm.prop` changes, for as long as `owner` lives."""
    apply(getattr(vm, prop))
    _Binding(vm, prop, owner, apply)


def bind(
    vm: ViewModel,
    prop: str,
    widget: QWidget,
    widget_prop: str = "",
    *,
    convert: Callable[[Any], Any] | None = None,
    read_only: bool = False,
) -> None:
    """Keep `widget.widget_prop` (default: its user property) equal to `vm.prop`; when the
    widget property has a notify signal (and no `convert`), edits flow back to the view-model."""
    meta = widget.metaObject()
    if widget_prop:
        meta_prop = meta.property(meta.indexOfProperty(widget_prop))
    else:
        meta_prop = meta.userProperty()
        name: object = meta_prop.name()
        widget_prop = name.decode() if isinstance(name, bytes) else str(name)
    if not meta_prop.isValid():
        raise ValueError(f"{type(widget).__name__} has no property {widget_prop!r}")

    def to_widget(value: Any) -> None:
        value = convert(value) if convert is not None else value
        if widget_prop == "visible":  # property("visible") is False while a parent is hidden
            widget.setVisible(bool(value))
        elif widget.property(widget_prop) != value:
            widget.setProperty(widget_prop, value)

    bind_to(vm, prop, to_widget, widget)
    if read_only or convert is not None or not meta_prop.hasNotifySignal():
        return
    signal_name = bytes(meta_prop.notifySignal().name().data()).decode()
    getattr(widget, signal_name).connect(lambda *_: setattr(vm, prop, widget.property(widget_prop)))


def bind_combo(vm: ViewModel, prop: str, combo: QComboBox) -> None:
    """Two-way: `vm.prop` holds the item data of the current combo box item."""

    def to_widget(value: Any) -> None:
        index = combo.findData(value)
        if index >= 0 and index != combo.currentIndex():
            combo.setCurrentIndex(index)

    def to_vm(index: int) -> None:
        if index >= 0:
            setattr(vm, prop, combo.itemData(index))

    bind_to(vm, prop, to_widget, combo)
    combo.currentIndexChanged.connect(to_vm)


def bind_plain_text(vm: ViewModel, prop: str, edit: QPlainTextEdit) -> None:
    """Two-way between a string property and a QPlainTextEdit."""

    def to_widget(value: Any) -> None:
        if edit.toPlainText() != value:
            edit.setPlainText(str(value))

    bind_to(vm, prop, to_widget, edit)
    edit.textChanged.connect(lambda: setattr(vm, prop, edit.toPlainText()))


def assign_when_checked(vm: ViewModel, prop: str, value: Any) -> Callable[[bool], None]:
    """A slot for a radio/tool button's `toggled`: when it turns on, `vm.prop = value`."""

    def slot(checked: bool) -> None:
        if checked:
            setattr(vm, prop, value)

    return slot
