"""Export an attribute as a LoRA (DESIGN §5) for A1111/Forge, ComfyUI, InvokeAI and diffusers.

An attribute applies as W + λ·ΔW with ΔW = A·B / r. A LoRA is read as W + m·ΔW_lora, where m
is the weight the user sets in the other tool (1.0 by default). The export bakes in the
intensity λ (by default the attribute's own default λ), so that m = 1 gives exactly this
attribute at λ, and m = 0.5 gives it at λ/2:

- kohya: `lora_unet_<module path, '.' → '_'>` with `lora_up.weight` = A (out, r),
  `lora_down.weight` = B (r, in) and `alpha` = λ. Tools apply up·down·(alpha/r)·m, which is
  λ·A·B/r·m: the factors are stored unchanged and λ lives in alpha.
- diffusers/PEFT: `unet.<module path>.lora_B.weight` = A·λ/r (out, r) and
  `unet.<module path>.lora_A.weight` = B (r, in), with no alpha: PEFT then scales by 1
  (lora_alpha = r), and B·A = λ·A·B/r.

Pick kohya for every tool but diffusers/PEFT code (see lora_formats.FORMAT_USE). Both carry
the `ss_*` and `modelspec.*` metadata that LoRA browsers show, plus `ostaf.*` keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save

from ostaf.errors import SettingsError
from ostaf.interop.lora_formats import FORMATS, LoraFormat
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.attribute_file import Attribute
from ostaf.progress import CancelToken

KOHYA_PREFIX = "lora_unet_"
DIFFUSERS_PREFIX = "unet."
SD2_CONTEXT_DIM = 1024  # SD 2.x cross-attention reads 1024-wide OpenCLIP states, SD 1.x 768


@dataclass
class LoraExport:
    """A written LoRA file and what went into it."""

    path: Path
    format: LoraFormat
    intensity: float
    family: str  # 'sd_v1' or 'sd_v2'
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]


def kohya_name(module_path: str) -> str:
    """`up_blocks.1.attentions.0.…to_out.0` → `lora_unet_up_blocks_1_attentions_0_…to_out_0`."""
    return KOHYA_PREFIX + module_path.replace(".", "_")


def model_family(attribute: Attribute) -> str:
    """'sd_v2' when the cross-attention keys read 1024-wide text states, else 'sd_v1'."""
    for path, (_, b) in attribute.factors.items():
        if ".attn2.to_k" in path or ".attn2.to_v" in path:
            return "sd_v2" if b.shape[1] >= SD2_CONTEXT_DIM else "sd_v1"
    return "sd_v1"


def lora_tensors(
    attribute: Attribute, fmt: LoraFormat, intensity: float
) -> dict[str, torch.Tensor]:
    """The LoRA state dict of `attribute` at `intensity` (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    rank = attribute.meta.rank
    for path in sorted(attribute.factors):
        a, b = (t.detach().to("cpu", torch.float32).contiguous() for t in attribute.factors[path])
        if fmt == "kohya":
            name = kohya_name(path)
            tensors[f"{name}.lora_down.weight"] = b.clone()  # (r, in)
            tensors[f"{name}.lora_up.weight"] = a.clone()  # (out, r)
            tensors[f"{name}.alpha"] = torch.tensor(float(intensity), dtype=torch.float32)
        elif fmt == "diffusers":
            tensors[f"{DIFFUSERS_PREFIX}{path}.lora_A.weight"] = b.clone()  # (r, in)
            tensors[f"{DIFFUSERS_PREFIX}{path}.lora_B.weight"] = (
                a * (intensity / rank)
            ).contiguous()
        else:
            raise SettingsError(f"LoRA format {fmt!r} is unknown; use kohya or diffusers")
    return tensors


def lora_metadata(
    attribute: Attribute, fmt: LoraFormat, intensity: float, output_name: str
) -> dict[str, str]:
    """`ss_*` (kohya) and `modelspec.*` (Stability AI model spec) keys, plus `ostaf.*`."""
    meta = attribute.meta
    family = model_family(attribute)
    v2 = family == "sd_v2"
    resolution = int(meta.tuning.get("resolution") or (768 if v2 else 512))
    if v2:
        architecture = (
            "stable-diffusion-v2-768-v" if resolution >= 768 else "stable-diffusion-v2-512"
        )
    else:
        architecture = "stable-diffusion-v1"
    description = meta.notes or f"{meta.kind} attribute learned by OSTAF from one image"
    own = json.loads(meta.to_json())
    own["reference"].pop("thumbnail", None)  # already in modelspec.thumbnail
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(meta.rank),
        "ss_network_alpha": f"{intensity:g}",
        "ss_base_model_version": family,
        "ss_v2": str(v2),
        "ss_output_name": output_name,
        "ss_sd_model_name": meta.base_model.name,
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_training_comment": description,
        "ss_tag_frequency": json.dumps({output_name: {t: 1 for t in meta.tags}}),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{architecture}/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": meta.name,
        "modelspec.description": description,
        "modelspec.date": meta.created_at,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.prediction_type": "v" if resolution >= 768 and v2 else "epsilon",
        "modelspec.tags": ", ".join(meta.tags),
        "ostaf.format": fmt,
        "ostaf.lambda": f"{intensity:g}",
        "ostaf.content_hash": attribute.content_hash(),
        "ostaf.attribute": json.dumps(own, sort_keys=True, ensure_ascii=False),
    }
    if meta.reference.thumbnail:
        metadata["modelspec.thumbnail"] = meta.reference.thumbnail
    return metadata


def export_lora(
    attribute: Attribute,
    out: Path | str,
    fmt: LoraFormat = "kohya",
    intensity: float | None = None,
    overwrite: bool = False,
    cancel: CancelToken | None = None,
) -> LoraExport:
    """Write `attribute` as a LoRA file at `out` (atomically), λ baked in; a cancel before
    the write leaves nothing behind."""
    out = Path(out)
    if fmt not in FORMATS:
        raise SettingsError(f"LoRA format {fmt!r} is unknown; use kohya or diffusers")
    if out.suffix != ".safetensors":
        raise SettingsError(f"LoRA file {out} must end in .safetensors")
    if out.exists() and not overwrite:
        raise SettingsError(f"{out} already exists; choose another name (or --force to replace)")
    lam = attribute.meta.default_lambda if intensity is None else float(intensity)
    if not 0 < lam <= 2:
        raise SettingsError(
            f"λ {lam:g} is outside 0..2 or zero (a LoRA at λ 0 changes nothing); try 1"
        )
    tensors = lora_tensors(attribute, fmt, lam)
    metadata = lora_metadata(attribute, fmt, lam, out.stem)
    data = save(tensors, metadata=metadata)
    if cancel is not None:
        cancel.check()
    atomic_write_bytes(out, data)
    return LoraExport(out, fmt, lam, model_family(attribute), tensors, metadata)
