"""Export an attribute as a LoRA (DESIGN §5) for A1111/Forge, ComfyUI, InvokeAI and diffusers.

An attribute applies as W + λ·ΔW with ΔW = A·B / r. A LoRA is read as W + m·ΔW_lora, where m
is the weight the user sets in the other tool (1.0 by default). The export bakes in the
intensity λ (by default the attribute's own default λ), so that m = 1 gives exactly this
attribute at λ, and m = 0.5 gives it at λ/2:

- kohya: `lora_unet_<module name, '.' → '_'>` with `lora_up.weight` = A (out, r),
  `lora_down.weight` = B (r, in) and `alpha` = λ. Tools apply up·down·(alpha/r)·m, which is
  λ·A·B/r·m: the factors are stored unchanged and λ lives in alpha. The module names are the
  family's: diffusers paths for SD 1.x/2.x, the SGM U-Net's for SDXL (as kohya writes them).
- diffusers/PEFT: `unet.<module path>.lora_B.weight` = A·λ/r (out, r) and
  `unet.<module path>.lora_A.weight` = B (r, in), with no alpha: PEFT then scales by 1
  (lora_alpha = r), and B·A = λ·A·B/r.

Every attribute is named in prompts by its own word (ostaf.method.words); the LoRA's metadata
carries it (`modelspec.trigger_phrase`, `ostaf.word`). An attribute that also learned its
word (ostaf.method.placeholder, or a word given later) exports it beside the LoRA as a
textual-inversion embedding named after the word, `<word>.safetensors`: the model's
embedding of each of the word's tokens plus λ·shift, as `emb_params` (n, D) for SD 1.x/2.x
and `clip_l` / `clip_g` for SDXL, the keys A1111/Forge, ComfyUI and InvokeAI read
embeddings by. Those tools call an embedding by its file name, so the prompts written for
OSTAF work there unchanged (ComfyUI: `embedding:<word>`).

Pick kohya for every tool but diffusers/PEFT code (see lora_formats.FORMAT_USE). Both carry
the `ss_*` and `modelspec.*` metadata by which A1111/Forge, ComfyUI and LoRA browsers tell
which models a LoRA is for (the family's), plus `ostaf.*` keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save

from ostaf.errors import SettingsError
from ostaf.interop.lora_formats import FORMATS, LoraFormat, word_path
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.attribute_file import Attribute
from ostaf.method.words import attribute_word
from ostaf.models.families import Family, family_of_attribute, sd1
from ostaf.progress import CancelToken

DIFFUSERS_PREFIX = "unet."


@dataclass
class LoraExport:
    """A written LoRA file and what went into it."""

    path: Path
    format: LoraFormat
    intensity: float
    family: Family
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    target: str  # which models it applies to, for people: "Stable Diffusion XL models"
    word: Path | None = None  # the learned placeholder as an embedding file, if any


# The embedding key each text encoder's vectors go under, per family (SDXL: two encoders).
WORD_KEYS = {
    ("text_encoder",): ("emb_params",),
    ("text_encoder", "text_encoder_2"): ("clip_l", "clip_g"),
}


def word_tensors(attribute: Attribute, intensity: float) -> dict[str, torch.Tensor]:
    """The learned placeholder as a textual-inversion embedding at `intensity`: per text
    encoder, one row per token of the placeholder (in its token order)."""
    rows: dict[str, list[torch.Tensor]] = {}
    for key in attribute.meta.shifts:
        encoder = key.rpartition(".")[0]
        base, shift = attribute.shift_bases[key], attribute.shifts[key]
        rows.setdefault(encoder, []).append(base.float() + float(intensity) * shift.float())
    names = WORD_KEYS.get(tuple(rows))
    if names is None or len({len(r) for r in rows.values()}) != 1:
        raise SettingsError(
            f"'{attribute.meta.name}' learned its word in text encoders {sorted(rows)}, which "
            "no embedding format holds; tune it again with Word rate 0 to export it as a LoRA"
        )
    return {name: torch.stack(r).contiguous() for name, r in zip(names, rows.values(), strict=True)}


def attribute_family(attribute: Attribute) -> Family:
    """The family the attribute was tuned on (SD 1.x for files that predate the record and
    whose layers do not tell: the demo model has SD 1.x's layout)."""
    return family_of_attribute(attribute.meta.tuning, attribute.factors) or sd1.FAMILY


def target_label(attribute: Attribute, family: Family) -> str:
    """Which base models a LoRA of `attribute` works on, in words."""
    from ostaf.models.demo_model import embedded_models

    demo_names = {model.name for model in embedded_models().values()}
    if attribute.meta.base_model.name in demo_names:  # its layers fit no published model
        return f"the demo model only ({family.label} layout)"
    return f"{family.label} models"


def lora_tensors(
    attribute: Attribute, fmt: LoraFormat, intensity: float
) -> dict[str, torch.Tensor]:
    """The LoRA state dict of `attribute` at `intensity` (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    rank = attribute.meta.rank
    family = attribute_family(attribute)
    for path in sorted(attribute.factors):
        a, b = (t.detach().to("cpu", torch.float32).contiguous() for t in attribute.factors[path])
        if fmt == "kohya":
            name = family.kohya_name(path)
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
    family = attribute_family(attribute)
    resolution = int(meta.tuning.get("resolution") or family.native_size)
    prediction_type = str(meta.tuning.get("prediction_type") or "")
    description = meta.notes or f"{meta.kind} attribute learned by OSTAF from one image"
    word = attribute_word(meta)
    own = json.loads(meta.to_json())
    own["reference"].pop("thumbnail", None)  # already in modelspec.thumbnail
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(meta.rank),
        "ss_network_alpha": f"{intensity:g}",
        "ss_output_name": output_name,
        "ss_sd_model_name": meta.base_model.name,
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_training_comment": description,
        "ss_tag_frequency": json.dumps({output_name: {t: 1 for t in [word, *meta.tags]}}),
        "modelspec.sai_model_spec": "1.0.0",
        **family.lora_metadata(fmt, resolution, prediction_type),
        "modelspec.title": meta.name,
        "modelspec.description": description,
        "modelspec.date": meta.created_at,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.tags": ", ".join(meta.tags),
        "modelspec.trigger_phrase": word,
        "ostaf.format": fmt,
        "ostaf.lambda": f"{intensity:g}",
        "ostaf.content_hash": attribute.content_hash(),
        "ostaf.word": word,
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
    word = word_path(out, attribute_word(attribute.meta)) if attribute.shifts else None
    if word == out:
        raise SettingsError(
            f"{out.name} is where the attribute's word goes ({word.stem}.safetensors, its "
            "embedding); give the LoRA another name"
        )
    for path in (out, word):
        if path is not None and path.exists() and not overwrite:
            raise SettingsError(
                f"{path} already exists; choose another name (or --force to replace)"
            )
    lam = attribute.meta.default_lambda if intensity is None else float(intensity)
    if not 0 < lam <= 2:
        raise SettingsError(
            f"λ {lam:g} is outside 0..2 or zero (a LoRA at λ 0 changes nothing); try 1"
        )
    tensors = lora_tensors(attribute, fmt, lam)
    metadata = lora_metadata(attribute, fmt, lam, out.stem)
    data = save(tensors, metadata=metadata)
    word_data = None
    if word is not None:
        metadata["ostaf.word_file"] = word.name
        data = save(tensors, metadata=metadata)
        word_data = save(
            word_tensors(attribute, lam),
            metadata={"ostaf.placeholder": attribute_word(attribute.meta)},
        )
    if cancel is not None:
        cancel.check()
    if word is not None and word_data is not None:
        atomic_write_bytes(word, word_data)
    atomic_write_bytes(out, data)
    family = attribute_family(attribute)
    label = target_label(attribute, family)
    return LoraExport(out, fmt, lam, family, tensors, metadata, label, word)
