"""Single-file Stable Diffusion 1.x / 2.x checkpoints, loaded offline (DESIGN §3).

diffusers' `from_single_file` converts the original (LDM) key layout, but it takes the component
configs from a diffusers-format folder and, without a local one, from the Hub. We always pass a
folder shipped in resources/model_configs/, chosen by reading the checkpoint's tensor names.
Both families share one copy of the CLIP vocabulary (clip_tokenizer/); each family's tokenizer/
holds only its settings, and the tokenizer is built here and handed to diffusers.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open

from ostaf import paths
from ostaf.errors import ModelLoadError

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

log = logging.getLogger(__name__)

SD15, SD21 = "sd15", "sd21"
FAMILY_NAMES = {SD15: "Stable Diffusion 1.x", SD21: "Stable Diffusion 2.x"}
UNET_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # SD 1.x: OpenAI CLIP ViT-L/14 (transformers)
OPEN_CLIP_PREFIX = "cond_stage_model.model."  # SD 2.x: OpenCLIP ViT-H/14
# The first cross-attention key projection: its input width is the text encoder's width.
CONTEXT_KEY = UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
CONV_IN_KEY = UNET_PREFIX + "input_blocks.0.0.weight"
FAMILY_BY_CONTEXT_WIDTH = {768: SD15, 1024: SD21}
COMPONENT_NAMES = {
    "UNet2DConditionModel": "U-Net",
    "AutoencoderKL": "VAE",
    "CLIPTextModel": "text encoder",
}
TOKENIZER_SETTINGS = ("bos_token", "eos_token", "unk_token", "pad_token", "model_max_length")


def model_config_dir(family: str) -> Path:
    """The shipped config-only diffusers folder of 'sd15' or 'sd21'."""
    return paths.resource("model_configs", family)


def shared_tokenizer_dir() -> Path:
    """vocab.json and merges.txt of CLIP's BPE tokenizer, shared by every family."""
    return paths.resource("model_configs", "clip_tokenizer")


def detect_family(path: Path) -> str:
    """'sd15' or 'sd21', from the checkpoint's tensor names and two shapes (nothing is loaded);
    ModelLoadError for anything that is not an SD 1.x/2.x text-to-image checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist; choose an existing .safetensors checkpoint")
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = set(handle.keys())
            shapes = {
                k: tuple(handle.get_slice(k).get_shape())
                for k in (CONTEXT_KEY, CONV_IN_KEY)
                if k in keys
            }
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(
            f"{path}: the file is truncated or corrupt ({_first_line(exc)}); "
            "download or copy it again"
        ) from exc

    foreign = _foreign_kind(keys)
    if foreign:
        raise ModelLoadError(
            f"{path}: this is {foreign}, not a Stable Diffusion 1.x/2.x base checkpoint; "
            "choose a full SD 1.x/2.x model"
        )
    if CONV_IN_KEY in shapes and shapes[CONV_IN_KEY][1] != 4:
        raise ModelLoadError(
            f"{path}: its U-Net takes {shapes[CONV_IN_KEY][1]} input channels, not 4 (an "
            "inpainting, depth or instruct model); choose a text-to-image SD 1.x/2.x checkpoint"
        )

    by_text_encoder = (
        SD21
        if any(k.startswith(OPEN_CLIP_PREFIX) for k in keys)
        else SD15
        if any(k.startswith(CLIP_PREFIX) for k in keys)
        else None
    )
    context = shapes.get(CONTEXT_KEY)
    by_unet = FAMILY_BY_CONTEXT_WIDTH.get(context[-1]) if context else None
    if by_text_encoder and by_unet and by_text_encoder != by_unet:
        raise ModelLoadError(
            f"{path}: its U-Net is {FAMILY_NAMES[by_unet]} but its text encoder is "
            f"{FAMILY_NAMES[by_text_encoder]}; the checkpoint is inconsistent"
        )
    family = by_text_encoder or by_unet
    if family is None:
        raise ModelLoadError(
            f"{path}: no text encoder and no recognisable U-Net; not a Stable Diffusion "
            "1.x/2.x checkpoint"
        )
    return family


def _foreign_kind(keys: set[str]) -> str | None:
    """A name for a well-known kind of safetensors file that is not an SD 1.x/2.x model."""
    # kohya (lora_unet_*), PEFT (*.lora_A.*), old diffusers (*_lora.*) and LyCORIS names.
    if any(marker in k.lower() for k in keys for marker in ("lora", "lokr_", "hada_")):
        return "a LoRA (apply it to a base model instead)"
    if any(k.startswith("conditioner.embedders.") for k in keys) or (
        UNET_PREFIX + "label_emb.0.0.weight" in keys
    ):
        return "a Stable Diffusion XL checkpoint"
    if any(
        k.startswith((UNET_PREFIX + "joint_blocks.", UNET_PREFIX + "double_blocks.")) for k in keys
    ):
        return "an SD3 or Flux checkpoint"
    if "emb_params" in keys or any(k.startswith("string_to_param") for k in keys):
        return "a textual-inversion embedding"
    if not any(k.startswith(UNET_PREFIX + "input_blocks.") for k in keys):
        if any(k.startswith(("down_blocks.", "unet.")) for k in keys):
            return "a diffusers-format weight file (choose its whole diffusers folder)"
        if any(k.startswith(("encoder.", "decoder.", "first_stage_model.")) for k in keys):
            return "a VAE on its own"
        return "a file without a Stable Diffusion U-Net"
    return None


def load_single_file(
    path: Path, dtype: torch.dtype, config_dir: Path | None = None
) -> StableDiffusionPipeline:
    """Load an SD 1.x/2.x `.safetensors` checkpoint with the shipped configs (never the Hub);
    `config_dir` replaces the shipped folder (tests use tiny ones)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    path = Path(path)
    family = detect_family(path)
    config_dir = Path(config_dir) if config_dir is not None else model_config_dir(family)
    prediction_type = _prediction_type_from_yaml(path)
    if family == SD21 and prediction_type is None:
        log.info("%s: no .yaml beside it, so taken as a 768 px v-prediction SD 2.x model", path)
    components: dict[str, Any] = {}
    try:
        if family == SD15:
            from ostaf.models.legacy_text_encoder import load_legacy_text_encoder

            legacy = load_legacy_text_encoder(path, config_dir, dtype)
            if legacy is not None:  # keys without `text_model.`: built from the same tensors
                components["text_encoder"] = legacy
        pipe = StableDiffusionPipeline.from_single_file(
            str(path),
            # A str: diffusers only accepts a folder given as one, else it looks for a repo id.
            config=str(config_dir),
            local_files_only=True,
            torch_dtype=dtype,
            tokenizer=_load_tokenizer(config_dir),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            **components,
        )
    except SingleFileComponentError as exc:
        # diffusers says "Failed to load <Class>. Weights for this component appear to be missing".
        component = _first_line(exc).removeprefix("Failed to load ").split(".")[0]
        raise ModelLoadError(
            f"{path}: the checkpoint has no {COMPONENT_NAMES.get(component, component)} "
            "weights; choose a full checkpoint with U-Net, VAE and text encoder"
        ) from exc
    except NotImplementedError as exc:
        # What diffusers raises when it moves a U-Net or VAE that still has meta tensors, i.e.
        # weights the file lacks.
        raise ModelLoadError(
            f"{path}: some U-Net or VAE weights are missing; it is not a complete "
            f"{FAMILY_NAMES[family]} checkpoint"
        ) from exc
    except (ValueError, RuntimeError, KeyError, OSError, SafetensorError) as exc:
        raise ModelLoadError(
            f"{path}: cannot load it as {FAMILY_NAMES[family]} ({_first_line(exc)})"
        ) from exc
    _check_complete(pipe, path, family)
    if prediction_type is not None:
        _apply_prediction_type(pipe, family, prediction_type)
    return pipe


def _load_tokenizer(config_dir: Path) -> CLIPTokenizer:
    """The folder's own tokenizer files if it has them, else the shared CLIP vocabulary with
    the folder's settings (pad token, length)."""
    from transformers import CLIPTokenizer

    settings_dir = config_dir / "tokenizer"
    if (settings_dir / "vocab.json").is_file():
        return CLIPTokenizer.from_pretrained(settings_dir, local_files_only=True)
    settings_file = settings_dir / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    return CLIPTokenizer.from_pretrained(
        shared_tokenizer_dir(),
        local_files_only=True,
        **{k: v for k, v in settings.items() if k in TOKENIZER_SETTINGS},
    )


def _check_complete(pipe: Any, path: Path, family: str) -> None:
    # diffusers builds each model on the meta device and fills in the tensors the checkpoint
    # has: any tensor left on meta was missing from the file. (It fails by itself for the
    # U-Net and VAE, but leaves the text encoder half-empty.)
    for name in ("unet", "vae", "text_encoder"):
        module: torch.nn.Module = getattr(pipe, name)
        missing = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        if missing:
            raise ModelLoadError(
                f"{path}: {len(missing)} {name} tensors (e.g. {missing[0]}) are missing; "
                f"it is not a complete {FAMILY_NAMES[family]} checkpoint"
            )


def _prediction_type_from_yaml(path: Path) -> str | None:
    """'v_prediction' or 'epsilon' from an original-config .yaml next to the checkpoint (the
    A1111 convention), or None when there is none."""
    yaml_path = path.with_suffix(".yaml")
    if not yaml_path.is_file():
        return None
    import yaml

    try:
        config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        parameterization = config["model"]["params"].get("parameterization", "eps")
    except (OSError, ValueError, yaml.YAMLError, LookupError, TypeError, AttributeError) as exc:
        raise ModelLoadError(
            f"{yaml_path}: cannot read this model config ({_first_line(exc)}); "
            "fix or remove it to use the defaults"
        ) from exc
    return "v_prediction" if parameterization == "v" else "epsilon"


def _apply_prediction_type(pipe: Any, family: str, prediction_type: str) -> None:
    # `Any`: mypy resolves diffusers' pipeline classes to attribute-less dummies.
    if prediction_type == pipe.scheduler.config.prediction_type:
        return
    pipe.scheduler = type(pipe.scheduler).from_config(
        pipe.scheduler.config, prediction_type=prediction_type
    )
    if family == SD21 and prediction_type == "epsilon":
        # The epsilon SD 2.x models are the 512 px "-base" ones (the v ones are 768 px).
        pipe.unet.register_to_config(sample_size=64)
        pipe.vae.register_to_config(sample_size=512)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
