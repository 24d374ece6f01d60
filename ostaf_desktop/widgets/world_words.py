"""On the demo model: describe the reference with the demo world's words (shape, colour,
pattern, style, background), the only words that model knows, instead of a template it
cannot use."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QPushButton, QWidget

from ostaf.method.regions import AttributeKind
from ostaf.world.description import words_in_description
from ostaf.world.scenes import ATTRIBUTES, VALUES
from ostaf_desktop.binding import bind_to
from ostaf_desktop.viewmodels.tuning import ALL_THREE, TuningViewModel
from ostaf_desktop.widgets.layout import compact_combo


class WorldWordPicker(QWidget):
    """One box per attribute of a world picture and a button that writes the description;
    the kind's own attributes are the placeholder, so their boxes are off."""

    def __init__(self, vm: TuningViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        form = QFormLayout(self)  # one word a row: the Learn column is narrow
        form.setContentsMargins(14, 0, 0, 0)
        form.setVerticalSpacing(4)
        self.boxes: dict[str, QComboBox] = {}
        for name in ATTRIBUTES:
            box = compact_combo(6)
            box.addItems(list(VALUES[name]))
            box.setToolTip(f"The picture's {name}, in the demo world's words")
            form.addRow(name.title(), box)
            self.boxes[name] = box
        self.use = QPushButton("Describe with these words")
        self.use.setToolTip(
            "Write the Description from these words, with {token} where the chosen kind's "
            "words go; it then follows the kind"
        )
        form.addRow(self.use)
        self.use.clicked.connect(lambda: vm.describe_with_words(self.words()))
        bind_to(vm, "kind", self._show_kind, self)

    def words(self) -> dict[str, str]:
        """The chosen word of each attribute."""
        return {name: box.currentText() for name, box in self.boxes.items()}

    def _show_kind(self, kind: str) -> None:
        # All three: the description is the picture's every word, each kind's as its own.
        named = ATTRIBUTES if kind == ALL_THREE else words_in_description(AttributeKind(kind))
        for name, box in self.boxes.items():
            box.setEnabled(name in named)
