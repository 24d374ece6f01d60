"""Check a base-model choice without loading it, so a settings page can say at once whether a
folder or file is usable (and why not). Folders are checked without torch; single files read
only the checkpoint's tensor names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ostaf.errors import ModelLoadError
from ostaf.models.families import Family, SizeChoice, family_of_folder

WEIGHT_NAMES = ("diffusion_pytorch_model", "model")


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
    from ostaf.models.families import recognise_checkpoint

    family, _ = recognise_checkpoint(path)
    size_gb = path.stat().st_size / 1e9
    return f"{family.label} checkpoint, {size_gb:.1f} GB"


def _check_folder(path: Path) -> str:
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(
            f"{path}: no model_index.json, so not a diffusers model folder; choose the folder "
            "that holds unet/, vae/, text_encoder/ and model_index.json"
        )
    family = family_of_folder(path)
    missing = [c for c in family.components if not (path / c).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{path}: missing {', '.join(missing)}; the model folder is incomplete"
        )
    for component in ("unet", "vae", *family.text_encoders):
        if not _has_weights(path / component):
            raise ModelLoadError(
                f"{path}: {component}/ holds no weights (only a config?); copy the whole model"
            )
    return f"{family.label} diffusers folder ({path.name})"


def _has_weights(folder: Path) -> bool:
    return any(
        entry.name.startswith(WEIGHT_NAMES) and entry.suffix in (".safetensors", ".bin")
        for entry in folder.iterdir()
    )


@dataclass(frozen=True)
class ModelSizes:
    """A model's family and sizes, read from its configs (nothing loaded)."""

    family: Family
    native: int  # px, square
    vae_scale_factor: int

    def render_sizes(self) -> tuple[SizeChoice, ...]:
        return self.family.offered_sizes(self.native)

    def tuning_sizes(self) -> tuple[int, ...]:
        return self.family.tuning_sizes(self.native, self.vae_scale_factor)


def model_sizes(source: str) -> ModelSizes:
    """The family, native size and VAE scale of a model choice, from its JSON configs (a
    single file's come from its family's shipped folder)."""
    check_model_source(source)
    if source == "demo":
        from ostaf.models.demo_model import demo_model_dir

        folder, family = demo_model_dir(), None
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            folder, family = path, None
        else:
            from ostaf.models.families import recognise_checkpoint

            family, _ = recognise_checkpoint(path)
            folder = family.config_dir()
    family = family or family_of_folder(folder)
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
        vae = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
        scale = 2 ** (len(vae["block_out_channels"]) - 1)
        return ModelSizes(family, int(unet["sample_size"]) * scale, scale)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{folder}: its unet/ or vae/ config is damaged ({exc})") from exc
