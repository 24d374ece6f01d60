"""The LoRA export dialog says which format suits which tool, and kohya (read everywhere) is
the default, as in the CLI."""

from __future__ import annotations

import pytest

from ostaf.cli.main import build_parser
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.lora_dialog import LoraExportDialog
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import add_attribute


def test_dialog_names_the_tools_of_each_format(window: MainWindow, vm: MainViewModel) -> None:
    vm.library.selected_id = add_attribute(vm, "Blue glaze")
    window.shortcuts.export_lora.trigger()
    dialog = window.library_actions.dialog
    assert isinstance(dialog, LoraExportDialog)

    assert dialog.format.currentData() == "kohya"
    kohya = dialog.format_note.text()
    assert all(tool in kohya for tool in ("A1111", "Forge", "ComfyUI", "InvokeAI"))
    assert "kohya works in" in dialog.intro.text()

    dialog.format.setCurrentIndex(dialog.format.findData("diffusers"))
    note = dialog.format_note.text()
    assert "For diffusers/PEFT code only" in note and "ComfyUI" in note and "apply nothing" in note
    assert "only for diffusers or PEFT code" in dialog.format.currentText()


def test_cli_default_is_the_format_every_tool_reads(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["export-lora", "a.safetensors", "--out", "b.safetensors"])
    assert args.format == "kohya"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export-lora", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "kohya: for A1111/Forge, ComfyUI and InvokeAI" in help_text
    assert "diffusers: for diffusers/PEFT code only" in help_text
    assert "(default: kohya)" in help_text
