"""The LoRA formats we export, which tool reads which, and where the attribute's word goes
beside a LoRA (no torch here: the CLI's help and the export dialog show it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ostaf.errors import SettingsError
from ostaf.library.project_paths import is_reserved_name

LoraFormat = Literal["kohya", "diffusers"]
FORMATS: tuple[LoraFormat, ...] = ("kohya", "diffusers")
DEFAULT_FORMAT: LoraFormat = "kohya"
# ComfyUI's key map (comfy/lora.py, model_lora_keys_unet) knows kohya names and diffusers'
# older `.processor.to_q` names, not PEFT's `unet.<path>.lora_A`: it loads such a file, logs
# "lora key not loaded" for every key and changes nothing. A1111/Forge (extensions-builtin/
# Lora/networks.py) report the same keys as "failed to match". tests/core/test_lora_keys.py
# re-derives ComfyUI's names.
FORMAT_USE: dict[str, str] = {
    "kohya": "for A1111/Forge, ComfyUI and InvokeAI (diffusers reads it too): works everywhere",
    "diffusers": (
        "for diffusers/PEFT code only: ComfyUI and A1111/Forge load it without an error "
        "but apply nothing"
    ),
}


def word_path(out: Path, word: str) -> Path:
    """Where the learned word of a LoRA written at `out` goes: beside it, named after the
    word, as other tools call an embedding by its file name."""
    if is_reserved_name(word):
        raise SettingsError(
            f"the word '{word}' cannot name a file on Windows; give the attribute another word"
        )
    return out.with_name(f"{word}{out.suffix}")


def word_advice(word: str, word_file: Path | None) -> str:
    """How to use an exported attribute in other tools, in one or two sentences."""
    if word_file is None:
        return f"Write {word} in prompts where the attribute goes, as in OSTAF"
    return (
        f"Write {word} in prompts where the attribute goes, as in OSTAF, and put "
        f"{word_file.name} (its learned word) in the tool's embeddings folder: A1111/Forge "
        f"read {word} by the file's name, ComfyUI (models/embeddings) as embedding:{word}"
    )
