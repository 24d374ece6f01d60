"""Observable properties and one-line bindings."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QPlainTextEdit, QSpinBox
from pytestqt.qtbot import QtBot

from ostaf_desktop.binding import bind, bind_combo, bind_plain_text
from ostaf_desktop.observable import Observable, ViewModel, observable_names


class Model(ViewModel):
    count = Observable(3)
    text = Observable("")
    choice = Observable("b")
    items = Observable[tuple[int, ...]](())


def test_observable_emits_only_on_change(qtbot: QtBot) -> None:
    vm = Model()
    seen: list[tuple[str, object]] = []
    vm.changed.connect(lambda name, value: seen.append((name, value)))
    vm.count = 3
    vm.count = 4
    vm.items = (1,)
    vm.items = (1,)
    assert seen == [("count", 4), ("items", (1,))]
    assert set(observable_names(vm)) == {"count", "text", "choice", "items"}


def test_two_way_and_one_way_bindings(qtbot: QtBot) -> None:
    vm = Model()
    spin, label, combo, edit = QSpinBox(), QLabel(), QComboBox(), QPlainTextEdit()
    for widget in (spin, label, combo, edit):
        qtbot.addWidget(widget)
    for value in ("a", "b", "c"):
        combo.addItem(value.upper(), value)
    bind(vm, "count", spin)
    bind(vm, "count", label, "text", convert=lambda n: f"{n} steps")
    bind_combo(vm, "choice", combo)
    bind_plain_text(vm, "text", edit)
    assert (spin.value(), label.text(), combo.currentText()) == (3, "3 steps", "B")
    spin.setValue(7)
    assert vm.count == 7 and label.text() == "7 steps"
    vm.count = 9
    assert spin.value() == 9
    combo.setCurrentIndex(2)
    assert vm.choice == "c"
    edit.setPlainText("hello")
    assert vm.text == "hello"
    vm.text = "bye"
    assert edit.toPlainText() == "bye"
