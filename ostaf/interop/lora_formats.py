"""The LoRA formats we export and which tool reads which (no torch here: the CLI's help and
the export dialog show it)."""

from __future__ import annotations

from typing import Literal

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
