"""Our kohya LoRA keys are the names ComfyUI looks for; our diffusers/PEFT keys are not.

ComfyUI reads a LoRA through a key map built from the loaded model (read for this test):
- comfy/model_detection.py `detect_unet_config` counts, in the checkpoint's original (LDM) key
  layout, the res blocks per level and the transformer blocks of every input, output and
  middle block: https://github.com/comfyanonymous/ComfyUI/blob/d415a44fe698d8ba6d1a35dd4592dc52d838933e/comfy/model_detection.py
- comfy/utils.py `unet_to_diffusers` turns those counts into diffusers module names with their
  LDM names: https://github.com/comfyanonymous/ComfyUI/blob/2ba5cc8b867bc1aabe59fdaf0a8489e65012d603/comfy/utils.py
- comfy/lora.py `model_lora_keys_unet` maps `lora_unet_<diffusers name, . → _>` and the old
  diffusers `[unet.]<name with .processor.to_*>` names to the LDM weight, and `load_lora` reads
  `<name>.lora_up.weight`, `.lora_down.weight` and `.alpha` (PEFT's `.lora_B/.lora_A` too, but
  only under a mapped name); every other key is logged as "lora key not loaded":
  https://github.com/comfyanonymous/ComfyUI/blob/41444b5236c613ee5ff7d09aa620f94b702f30eb/comfy/lora.py

The map is re-derived here from those rules (not copied) on tiny U-Nets with SD 1.x's and
SD 2.x's block layouts, written in the LDM layout by tests/core/ldm_keys.py.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from ostaf.interop.lora_export import lora_tensors
from ostaf.method.regions import BLOCKS, AttributeKind, Region
from tests.core import ldm_keys
from tests.core.attribute_factory import make_attribute
from tests.core.test_checkpoints import TINY_LAYERS_PER_BLOCK, build_tiny

PROJECTIONS = [f"attn{a}.{p}" for a in (1, 2) for p in ("to_q", "to_k", "to_v", "to_out.0")]
LORA_PARTS = (".lora_up.weight", ".lora_down.weight", ".alpha")


def _depth(keys: set[str], prefix: str) -> int:
    """How many transformer blocks the LDM block at `prefix` holds."""
    found = {
        m[1]
        for k in keys
        if (m := re.match(re.escape(prefix) + r"1\.transformer_blocks\.(\d+)\.", k))
    }
    return len(found)


def _unet_config(keys: set[str]) -> dict[str, Any]:
    """Res blocks per level and transformer depths, counted as detect_unet_config does."""
    inputs = len({k.split(".")[1] for k in keys if k.startswith("input_blocks.")})
    res_blocks: list[int] = []
    depth_in: list[int] = []
    depth_out: list[int] = []  # last output block first
    last = 0
    for count in range(inputs):
        prefix, out_prefix = f"input_blocks.{count}.", f"output_blocks.{inputs - count - 1}."
        if f"{prefix}0.op.weight" in keys:  # a downsampler starts the next level
            res_blocks.append(last)
            last = 0
            depth_out.append(_depth(keys, out_prefix))
            continue
        if f"{prefix}0.in_layers.0.weight" in keys:
            last += 1
            depth_in.append(_depth(keys, prefix))
        if f"{out_prefix}0.in_layers.0.weight" in keys:
            depth_out.append(_depth(keys, out_prefix))
    res_blocks.append(last)
    middle = len(
        {k.split(".")[3] for k in keys if k.startswith("middle_block.1.transformer_blocks.")}
    )
    return {"res_blocks": res_blocks, "in": depth_in, "out": depth_out, "middle": middle}


def comfy_unet_key_map(ldm_unet_keys: set[str]) -> dict[str, str]:
    """LoRA name → the LDM weight it patches, for the attention projections (see above)."""
    config = _unet_config(ldm_unet_keys)
    depth_in, depth_out = list(config["in"]), list(config["out"])
    names: dict[str, str] = {}  # diffusers module → LDM module

    def blocks(diffusers: str, ldm: str, depth: int) -> None:
        for block in range(depth):
            for projection in PROJECTIONS:
                tail = f"transformer_blocks.{block}.{projection}"
                names[f"{diffusers}.{tail}"] = f"{ldm}.{tail}"

    levels = len(config["res_blocks"])
    for level, count in enumerate(config["res_blocks"]):
        n = 1 + (count + 1) * level
        for i in range(count):
            blocks(f"down_blocks.{level}.attentions.{i}", f"input_blocks.{n}.1", depth_in.pop(0))
            n += 1
    blocks("mid_block.attentions.0", "middle_block.1", config["middle"])
    for level, count in enumerate(reversed(config["res_blocks"])):
        n = (count + 1) * level
        for i in range(count + 1):
            blocks(f"up_blocks.{level}.attentions.{i}", f"output_blocks.{n}.1", depth_out.pop())
            n += 1
    assert levels and not depth_in and not depth_out  # every counted block was named

    key_map = {}
    for diffusers, ldm in names.items():
        target = f"diffusion_model.{ldm}.weight"
        key_map["lora_unet_" + diffusers.replace(".", "_")] = target
        old_diffusers = diffusers.replace(".to_", ".processor.to_").removesuffix(".0")
        key_map[old_diffusers] = key_map["unet." + old_diffusers] = target
    for ldm in ldm_unet_keys:  # LDM names work too
        if ldm.endswith(".weight"):
            key_map["lora_unet_" + ldm.removesuffix(".weight").replace(".", "_")] = (
                f"diffusion_model.{ldm}"
            )
    return key_map


@pytest.fixture(scope="module", params=["sd15", "sd21"])
def tiny_model(request: pytest.FixtureRequest) -> Any:
    """A tiny U-Net with SD 1.x's or SD 2.x's layout, as a stand-in base model."""
    from ostaf.models.families import sd1, sd2

    torch.manual_seed(0)
    return SimpleNamespace(
        unet=build_tiny(request.param)["unet"],
        name="tiny",
        architecture="a" * 16,
        fingerprint="f" * 16,
        resolution=64,
        family=sd2.FAMILY if request.param == "sd21" else sd1.FAMILY,
    )


def _every_projection(model: Any) -> Any:
    region = Region(blocks=BLOCKS)
    return make_attribute(model, AttributeKind.STYLE, seed=3, region=region)


def test_comfyui_maps_every_kohya_key_to_its_weight(tiny_model: Any) -> None:
    ldm = ldm_keys.unet_to_ldm(tiny_model.unet.state_dict(), TINY_LAYERS_PER_BLOCK)
    ldm_names = {k.removeprefix(ldm_keys.UNET) for k in ldm}
    key_map = comfy_unet_key_map(ldm_names)
    attribute = _every_projection(tiny_model)
    tensors = lora_tensors(attribute, "kohya", 0.8)

    stems = {k.removesuffix(part) for k in tensors for part in LORA_PARTS if k.endswith(part)}
    assert {s + part for s in stems for part in LORA_PARTS} == set(tensors)  # nothing else
    assert len(stems) == len(attribute.factors)
    for path in attribute.factors:
        stem = "lora_unet_" + path.replace(".", "_")
        target = key_map[stem]  # a KeyError here is ComfyUI's "lora key not loaded"
        # The same LDM weight that our own converter gives this diffusers module.
        assert ldm_keys.UNET + target.removeprefix("diffusion_model.") in ldm
        weight = ldm[ldm_keys.UNET + target.removeprefix("diffusion_model.")]
        up, down = tensors[f"{stem}.lora_up.weight"], tensors[f"{stem}.lora_down.weight"]
        assert weight.shape == (up.shape[0], down.shape[1])


def test_comfyui_has_no_name_for_peft_keys(tiny_model: Any) -> None:
    # Why the README and the export dialog send ComfyUI users to the kohya format.
    ldm_names = {
        k.removeprefix(ldm_keys.UNET)
        for k in ldm_keys.unet_to_ldm(tiny_model.unet.state_dict(), TINY_LAYERS_PER_BLOCK)
    }
    key_map = comfy_unet_key_map(ldm_names)
    tensors = lora_tensors(_every_projection(tiny_model), "diffusers", 0.8)

    stems = {k.removesuffix(".lora_A.weight").removesuffix(".lora_B.weight") for k in tensors}
    assert stems and not stems & set(key_map)


def test_the_derived_map_covers_the_sd15_layout(tiny_model: Any) -> None:
    # The counts the map is built from: SD's 4 levels of 2 res blocks, attention in the first
    # three down levels and the last three up levels, one transformer block each.
    ldm_names = {
        k.removeprefix(ldm_keys.UNET)
        for k in ldm_keys.unet_to_ldm(tiny_model.unet.state_dict(), TINY_LAYERS_PER_BLOCK)
    }
    config = _unet_config(ldm_names)
    assert config["res_blocks"] == [2, 2, 2, 2]
    assert config["in"] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert config["out"] == [1] * 9 + [0] * 3  # last output block first
    assert config["middle"] == 1
