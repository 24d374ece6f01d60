"""Check a base-model choice without loading it, so a settings page can say at once whether a
folder or file is usable (and why not), and `sizes` and `tune --size` can answer before a
load of several GB. Folders are checked without torch through their typed configs; single
files read only the checkpoint's tensor names (and a sibling .yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ostaf.errors import ModelLoadError
from ostaf.models.component_configs import FolderConfigs, read_folder_configs
from ostaf.models.families import (
    Family,
    Prediction,
    SizeChoice,
    declared_prediction,
    family_of_folder,
    recognise_checkpoint,
)

WEIGHT_NAMES = ("diffusion_pytorch_model", "model")


def check_model_source(source: str) -> str:
    """A one-line description of a usable model choice; ModelLoadError says what is wrong."""
    from ostaf.models.demo_model import demo_model_dir, embedded_model, is_demo_source

    if is_demo_source(source):
        demo_model_dir(source)  # says how to rebuild it when it is missing
        return f"{embedded_model(source).name}: built in, works everywhere"
    path = _existing(source)
    if path.is_dir():
        family, configs = _complete_folder(path)
        return f"{family.label} diffusers folder ({path.name}){_unusual(prediction_of(configs))}"
    sizes = _single_file_sizes(path)
    size_gb = path.stat().st_size / 1e9
    return f"{sizes.family.label} checkpoint, {size_gb:.1f} GB{_unusual(sizes.prediction)}"


def _existing(source: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist; choose a diffusers folder or a checkpoint")
    return path


def _complete_folder(path: Path) -> tuple[Family, FolderConfigs]:
    family, configs = check_folder(path)
    for component in ("unet", "vae", *family.text_encoders):
        if not _has_weights(path / component):
            raise ModelLoadError(
                f"{path}: {component}/ holds no weights (only a config?); copy the whole model"
            )
    return family, configs


def check_folder(path: Path) -> tuple[Family, FolderConfigs]:
    """The family and typed configs of a diffusers folder, every component present and every
    config fitting its schema; ModelLoadError naming the file and field otherwise."""
    if not (path / "model_index.json").is_file():
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
    configs = read_folder_configs(path, family.text_encoders, family.tokenizers)
    scheduler = configs.scheduler.class_name
    if scheduler.startswith("EDM"):  # Playground v2.5's EDMDPMSolverMultistepScheduler, …
        raise ModelLoadError(
            f"{path}: its scheduler is {scheduler}, an EDM model (Playground v2.5 style) "
            f"whose noise schedule OSTAF cannot run; choose a {family.label} model"
        )
    return family, configs


def prediction_of(configs: FolderConfigs) -> Prediction:
    """What a folder's scheduler config says the model predicts."""
    return Prediction(configs.scheduler.prediction_type, configs.scheduler.rescale_betas_zero_snr)


def _unusual(prediction: Prediction) -> str:
    # ε-prediction is what every family's base model does: only the others are named.
    return "" if prediction.type == "epsilon" else f", {prediction.label}"


def _has_weights(folder: Path) -> bool:
    return any(
        entry.name.startswith(WEIGHT_NAMES) and entry.suffix in (".safetensors", ".bin")
        for entry in folder.iterdir()
    )


@dataclass(frozen=True)
class ModelSizes:
    """A model's family, sizes and prediction, read from its configs (nothing loaded)."""

    family: Family
    native: int  # px, square
    vae_scale_factor: int
    prediction: Prediction
    name: str  # as the loaded model will be named

    def render_sizes(self) -> tuple[SizeChoice, ...]:
        return self.family.offered_sizes(self.native)

    def tuning_sizes(self) -> tuple[int, ...]:
        return self.family.tuning_sizes(self.native, self.vae_scale_factor)

    def tuning_size(self, requested: int = 0) -> int:
        """`requested` checked against the model (SettingsError if it cannot take it), or
        (0) the native size."""
        return self.family.check_tuning_size(
            requested, self.native, self.vae_scale_factor, self.name
        )


def model_sizes(source: str) -> ModelSizes:
    """The family, native size, VAE scale and prediction of a model choice, from its typed
    JSON configs (a single file's come from its family's shipped folder and its own keys)."""
    from ostaf.models.demo_model import demo_model_dir, embedded_model, is_demo_source

    if is_demo_source(source):
        return _folder_sizes(*check_folder(demo_model_dir(source)), embedded_model(source).name)
    path = _existing(source)
    if path.is_dir():
        return _folder_sizes(*_complete_folder(path), path.name)
    return _single_file_sizes(path)


def _folder_sizes(family: Family, configs: FolderConfigs, name: str) -> ModelSizes:
    scale = configs.vae.scale_factor
    return ModelSizes(family, configs.unet.sample_size * scale, scale, prediction_of(configs), name)


def _single_file_sizes(path: Path) -> ModelSizes:
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
    family, keys = recognise_checkpoint(path)
    configs = read_folder_configs(family.config_dir(), family.text_encoders, family.tokenizers)
    prediction = declared_prediction(path, family, keys) or prediction_of(configs)
    # Loading applies the declared prediction the same way (SD 2.x "-base": 512 px).
    latent = family.sample_size_for(prediction.type, configs.unet.sample_size)
    scale = configs.vae.scale_factor
    return ModelSizes(family, latent * scale, scale, prediction, path.stem)
