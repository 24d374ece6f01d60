"""Base-model families and how a model is recognised as one of them.

Each family lives in one file here (`sd1.py`, `sd2.py`, `sdxl.py`, the protocol in
`family.py`) with a config folder in resources/model_configs/. Adding a family means adding
its file and folder and listing it in FAMILIES. This module recognises single files (from
tensor names and shapes, nothing loaded), diffusers folders (from their JSON configs),
loaded pipelines and attribute files; it refuses, in one line naming what it is, a file or
folder that is no supported base model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ostaf.errors import ModelLoadError
from ostaf.file_reading import MiB, read_regular_text
from ostaf.models.component_configs import ModelIndex, UNetConfig, read_config
from ostaf.models.families import sd1, sd2, sdxl
from ostaf.models.families.family import (
    UNET,
    CheckpointKeys,
    Conditioning,
    Family,
    Prediction,
    SizeChoice,
)

__all__ = [
    "FAMILIES",
    "CheckpointKeys",
    "Conditioning",
    "Family",
    "Prediction",
    "SizeChoice",
    "by_id",
    "declared_prediction",
    "family_of_attribute",
    "family_of_folder",
    "family_of_pipeline",
    "read_checkpoint_keys",
    "recognise_checkpoint",
    "supported_label",
]

FAMILIES: tuple[Family, ...] = (sd1.FAMILY, sd2.FAMILY, sdxl.FAMILY)
MAX_YAML_FILE = MiB  # an original-config .yaml holds a few kB
CONV_IN = UNET + "input_blocks.0.0.weight"
# What a U-Net with other than 4 input channels is: the latents plus a condition.
CHANNEL_VARIANTS = {
    9: "an inpainting model",
    5: "a depth-to-image model",
    8: "an InstructPix2Pix model",
}


def by_id(family_id: str) -> Family:
    """The family stored under `family_id` in attribute files."""
    for family in FAMILIES:
        if family.id == family_id:
            return family
    raise KeyError(family_id)


def supported_label() -> str:
    """'Stable Diffusion 1.x, Stable Diffusion 2.x or Stable Diffusion XL'."""
    labels = [f.label for f in FAMILIES]
    return ", ".join(labels[:-1]) + " or " + labels[-1]


# --- single files -----------------------------------------------------------------------------


def read_checkpoint_keys(path: Path) -> CheckpointKeys:
    """Every tensor's name and shape from a `.safetensors` header (no tensor is read)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist; choose an existing .safetensors checkpoint")
    try:
        with safe_open(str(path), framework="pt") as handle:
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(
            f"{path}: the file is truncated or corrupt ({_first_line(exc)}); "
            "download or copy it again"
        ) from exc
    return CheckpointKeys(shapes)


def recognise_checkpoint(path: Path) -> tuple[Family, CheckpointKeys]:
    """The family of a single-file checkpoint, from its tensor names and shapes; a
    ModelLoadError naming what the file is when it is no usable base model."""
    path = Path(path)
    keys = read_checkpoint_keys(path)
    foreign = _foreign_kind(keys)
    if foreign:
        raise ModelLoadError(
            f"{path}: this is {foreign}, not a base model; choose a full "
            f"{supported_label()} checkpoint"
        )
    by_text = next((f for f in FAMILIES if f.text_encoder_in(keys)), None)
    by_unet = next((f for f in FAMILIES if f.unet_in(keys)), None)
    if by_text and by_unet and by_text is not by_unet:
        raise ModelLoadError(
            f"{path}: its U-Net is {by_unet.label} but its text encoder is {by_text.label}; "
            "the checkpoint is inconsistent"
        )
    family = by_text or by_unet
    if family is None:
        raise ModelLoadError(
            f"{path}: no text encoder and no recognisable U-Net; not a {supported_label()} "
            "checkpoint"
        )
    channels = keys.dim(CONV_IN, 1)
    if channels is not None and channels != 4:
        what = CHANNEL_VARIANTS.get(channels, "not a text-to-image model")
        raise ModelLoadError(
            f"{path}: its U-Net takes {channels} input channels, not 4: {what} "
            f"({family.label}); choose a text-to-image checkpoint"
        )
    variant = family.unsupported_variant(keys)
    if variant:
        raise ModelLoadError(f"{path}: this is {variant}; choose a {family.label} base model")
    return family, keys


def declared_prediction(path: Path, family: Family, keys: CheckpointKeys) -> Prediction | None:
    """What a single file says it predicts: an original-config .yaml beside it (the A1111
    convention) first, else its own marker keys; None when neither says (the family's
    config folder then decides)."""
    yaml_path = Path(path).with_suffix(".yaml")
    if not yaml_path.is_file():
        return family.prediction_in(keys)
    import yaml

    try:
        config = yaml.safe_load(read_regular_text(yaml_path, MAX_YAML_FILE))
        parameterization = config["model"]["params"].get("parameterization", "eps")
    except (OSError, ValueError, yaml.YAMLError, LookupError, TypeError, AttributeError) as exc:
        raise ModelLoadError(
            f"{yaml_path}: cannot read this model config ({_first_line(exc)}); "
            "fix or remove it to use the defaults"
        ) from exc
    return Prediction("v_prediction" if parameterization == "v" else "epsilon")


def _foreign_kind(keys: CheckpointKeys) -> str | None:
    """A name for a well-known kind of safetensors file that is no base model of a family."""
    names = keys.shapes
    # kohya (lora_unet_*), PEFT (*.lora_A.*), old diffusers (*_lora.*) and LyCORIS names.
    if any(marker in k.lower() for k in names for marker in ("lora", "lokr_", "hada_")):
        return "a LoRA (apply it to a base model instead)"
    if keys.has_prefix(UNET + "joint_blocks.", "joint_blocks.", "text_encoders."):
        return "a Stable Diffusion 3 checkpoint"
    if keys.has_prefix(UNET + "double_blocks.", "double_blocks.", UNET + "single_blocks."):
        return "a Flux checkpoint"
    # SD 1.x/2.x embeddings (emb_params, string_to_param.*) and SDXL ones (clip_l + clip_g).
    if (
        "emb_params" in names
        or keys.has_prefix("string_to_param")
        or {"clip_l", "clip_g"} <= set(names)
    ):
        return "a textual-inversion embedding"
    if not keys.has_prefix(UNET + "input_blocks."):
        if keys.has_prefix("down_blocks.", "unet."):
            return "a diffusers-format weight file (choose its whole diffusers folder)"
        if keys.has_prefix("encoder.", "decoder.", "first_stage_model."):
            return "a VAE on its own"
        return "a file without a Stable Diffusion U-Net"
    return None


# --- diffusers folders --------------------------------------------------------------------------


def family_of_folder(path: Path) -> Family:
    """The family of a diffusers folder, from model_index.json and unet/config.json only
    (each read with its typed schema)."""
    index = read_config(path / "model_index.json", ModelIndex)
    unet_file = path / "unet" / "config.json"
    unet = read_config(unet_file, UNetConfig) if unet_file.is_file() else None
    pipeline = index.class_name
    width = unet.cross_attention_dim if unet is not None else None
    family = next((f for f in FAMILIES if f.claims_folder(pipeline, width)), None)
    if family is None:
        raise ModelLoadError(
            f"{path.name} holds {_pipeline_kind(pipeline)}; choose a {supported_label()} "
            "text-to-image model"
        )
    channels = unet.in_channels if unet is not None else 4
    if channels != 4:
        what = CHANNEL_VARIANTS.get(channels, "not a text-to-image model")
        raise ModelLoadError(
            f"{path.name}: its U-Net takes {channels} input channels, not 4: {what} "
            f"({family.label}); choose a text-to-image model"
        )
    variant = family.unsupported_folder(index)
    if variant:
        raise ModelLoadError(f"{path.name} is {variant}; choose a {family.label} base model")
    return family


def _pipeline_kind(pipeline: str) -> str:
    if not pipeline:
        return "an unknown model"
    if "Inpaint" in pipeline:
        return f"an inpainting model ({pipeline})"
    if pipeline.startswith("StableDiffusion3"):
        return "a Stable Diffusion 3 model"
    if pipeline.startswith("Flux"):
        return "a Flux model"
    return f"a {pipeline} model"


# --- loaded models and attributes -----------------------------------------------------------


def family_of_pipeline(pipe: Any) -> Family:
    """The family of a loaded diffusers pipeline."""
    name = type(pipe).__name__
    width = int(pipe.unet.config.cross_attention_dim)
    for family in FAMILIES:
        if family.claims_folder(name, width):
            return family
    raise ModelLoadError(f"a {name} is not a {supported_label()} pipeline")


def family_of_attribute(
    tuning: Mapping[str, Any], factors: Mapping[str, tuple[Any, Any]]
) -> Family | None:
    """The family an attribute was tuned on: recorded since SDXL support, else told by the
    width of the text states its cross-attention layers read; None when unknown."""
    recorded = tuning.get("family")
    if isinstance(recorded, str):
        try:
            return by_id(recorded)
        except KeyError:
            return None
    for path, (_, b) in factors.items():
        if ".attn2.to_k" in path or ".attn2.to_v" in path:
            width = int(b.shape[1])
            return next((f for f in FAMILIES if f.context_width == width), None)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
