"""Check a base-model choice without loading it, so a settings page can say at once whether a
folder or file is usable (and why not). Folders are checked without torch; single files read
only the checkpoint's tensor names."""

from __future__ import annotations

import json
from pathlib import Path

from ostaf.errors import ModelLoadError

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
FAMILY_BY_CONTEXT_WIDTH = {768: "Stable Diffusion 1.x", 1024: "Stable Diffusion 2.x"}


def check_model_source(source: str) -> str:
    """A one-line description of a usable model choice; ModelLoadError says what is wrong."""
    if source == "demo":
        from ostaf.models.demo_model import DEMO_NAME

        return f"{DEMO_NAME}: built in, works everywhere"
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist; choose a diffusers folder or a checkpoint")
    if path.is_dir():
        return _check_folder(path)
    suffix = path.suffix.lower()
    if suffix in (".ckpt", ".pt", ".pth", ".bin"):
        raise ModelLoadError(
            f"{path.name}: pickle checkpoints can run code when opened and are not loaded; "
            "convert it to .safetensors"
        )
    if suffix != ".safetensors":
        raise ModelLoadError(
            f"{path.name} is not a model; choose a diffusers folder or a .safetensors checkpoint"
        )
    from ostaf.models.single_file import FAMILY_NAMES, detect_family

    family = detect_family(path)
    size_gb = path.stat().st_size / 1e9
    return f"{FAMILY_NAMES[family]} checkpoint, {size_gb:.1f} GB"


def _check_folder(path: Path) -> str:
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(
            f"{path}: no model_index.json, so not a diffusers model folder; choose the folder "
            "that holds unet/, vae/, text_encoder/ and model_index.json"
        )
    try:
        pipeline = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{index} is damaged ({exc})") from exc
    if pipeline not in ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"):
        raise ModelLoadError(
            f"{path.name} holds a {pipeline or 'unknown'} model; choose a Stable Diffusion "
            "1.x/2.x text-to-image model"
        )
    missing = [c for c in COMPONENTS if not (path / c).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{path}: missing {', '.join(missing)}; the model folder is incomplete"
        )
    for component in ("unet", "vae", "text_encoder"):
        if not _has_weights(path / component):
            raise ModelLoadError(
                f"{path}: {component}/ holds no weights (only a config?); copy the whole model"
            )
    family = "Stable Diffusion"
    try:
        unet = json.loads((path / "unet" / "config.json").read_text(encoding="utf-8"))
        family = FAMILY_BY_CONTEXT_WIDTH.get(int(unet.get("cross_attention_dim", 0)), family)
    except (OSError, ValueError, TypeError):
        pass
    return f"{family} diffusers folder ({path.name})"


def _has_weights(folder: Path) -> bool:
    return any(
        entry.name.startswith(WEIGHT_NAMES) and entry.suffix in (".safetensors", ".bin")
        for entry in folder.iterdir()
    )
