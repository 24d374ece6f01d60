"""Single-file checkpoints (SD 1.x / 2.x LDM layout, SDXL SGM layout), loaded offline.

diffusers' `from_single_file` converts the original key layout, but it takes the component
configs from a diffusers-format folder and, without a local one, from the Hub. We always pass
the family's folder shipped in resources/model_configs/, the family being recognised from the
checkpoint's tensor names (ostaf.models.families). Every family shares one copy of the CLIP
vocabulary (clip_tokenizer/); each tokenizer folder holds only its settings, and the
tokenizers are built here and handed to diffusers.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ostaf import paths
from ostaf.errors import ModelLoadError
from ostaf.models.families import Family, Prediction, declared_prediction, recognise_checkpoint

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

log = logging.getLogger(__name__)

COMPONENT_NAMES = {
    "UNet2DConditionModel": "U-Net",
    "AutoencoderKL": "VAE",
    "CLIPTextModel": "text encoder",
    "CLIPTextModelWithProjection": "second text encoder",
}
TOKENIZER_SETTINGS = ("bos_token", "eos_token", "unk_token", "pad_token", "model_max_length")


def model_config_dir(folder: str) -> Path:
    """A shipped config-only diffusers folder by name ('sd15', 'sd21', 'sdxl')."""
    return paths.resource("model_configs", folder)


def shared_tokenizer_dir() -> Path:
    """vocab.json and merges.txt of CLIP's BPE tokenizer, shared by every family."""
    return paths.resource("model_configs", "clip_tokenizer")


def detect_family(path: Path) -> Family:
    """The family of a checkpoint, from its tensor names and shapes (nothing is loaded);
    ModelLoadError naming what the file is when it is no usable base model."""
    return recognise_checkpoint(Path(path))[0]


def load_single_file(path: Path, dtype: torch.dtype, config_dir: Path | None = None) -> Any:
    """Load a `.safetensors` checkpoint of any family with the shipped configs (never the
    Hub); `config_dir` replaces the shipped folder (tests use tiny ones)."""
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    path = Path(path)
    family, keys = recognise_checkpoint(path)
    config_dir = Path(config_dir) if config_dir is not None else family.config_dir()
    prediction = declared_prediction(path, family, keys)
    if prediction is None:
        log.info("%s: no .yaml beside it, so taken with %s's defaults", path, family.label)
    tokenizers = {name: load_tokenizer(config_dir / name) for name in family.tokenizers}
    components: dict[str, Any] = {}
    try:
        if family.clip_l_prefix is not None:
            from ostaf.models.legacy_text_encoder import load_legacy_text_encoder

            legacy = load_legacy_text_encoder(path, family.clip_l_prefix, config_dir, dtype)
            if legacy is not None:  # keys without `text_model.`: built from the same tensors
                components["text_encoder"] = legacy
        pipe = family.pipeline_class().from_single_file(
            str(path),
            # A str: diffusers only accepts a folder given as one, else it looks for a repo id.
            config=str(config_dir),
            local_files_only=True,
            torch_dtype=dtype,
            **tokenizers,
            **family.pipeline_options(),
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
            f"{family.label} checkpoint"
        ) from exc
    except (MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:  # whatever else diffusers or transformers raise: one line
        raise ModelLoadError(
            f"{path}: cannot load it as {family.label} ({_first_line(exc)})"
        ) from exc
    _check_complete(pipe, path, family)
    if prediction is not None:
        _apply_prediction(pipe, family, prediction)
    return pipe


def load_tokenizer(settings_dir: Path) -> CLIPTokenizer:
    """A tokenizer folder's own files if it has them, else the shared CLIP vocabulary with
    the folder's settings (pad token, length)."""
    from transformers import CLIPTokenizer

    if (settings_dir / "vocab.json").is_file():
        return CLIPTokenizer.from_pretrained(settings_dir, local_files_only=True)
    settings_file = settings_dir / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    return CLIPTokenizer.from_pretrained(
        shared_tokenizer_dir(),
        local_files_only=True,
        **{k: v for k, v in settings.items() if k in TOKENIZER_SETTINGS},
    )


def _check_complete(pipe: Any, path: Path, family: Family) -> None:
    # diffusers builds each model on the meta device and fills in the tensors the checkpoint
    # has: any tensor left on meta was missing from the file. (It fails by itself for the
    # U-Net and VAE, but leaves the text encoder half-empty.)
    for name in ("unet", "vae", *family.text_encoders):
        module: torch.nn.Module = getattr(pipe, name)
        missing = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        if missing:
            raise ModelLoadError(
                f"{path}: {len(missing)} {name} tensors (e.g. {missing[0]}) are missing; "
                f"it is not a complete {family.label} checkpoint"
            )


def _apply_prediction(pipe: Any, family: Family, prediction: Prediction) -> None:
    # `Any`: mypy resolves diffusers' pipeline classes to attribute-less dummies.
    settings = prediction.scheduler_settings()
    if all(pipe.scheduler.config.get(key) == value for key, value in settings.items()):
        return
    # Tuning's DDPM scheduler and every sampler are built from this config.
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **settings)
    family.on_prediction_type(pipe, prediction.type)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
