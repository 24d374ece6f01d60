"""Base models, offline by construction (DESIGN §3).

A base model is a diffusers pipeline of one of the families (SD 1.x, SD 2.x, SDXL) plus what
the method needs to know about it: its family, where it runs, its native resolution and two
fingerprints. It comes from the embedded demo model, a diffusers folder or a single-file
`.safetensors` checkpoint; nothing is ever fetched from a hub.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel

from ostaf.errors import ModelLoadError
from ostaf.method.offsets import OffsetMerger
from ostaf.method.placeholder import embedding_layers
from ostaf.models import offline
from ostaf.models.demo_model import DEMO_GUIDANCE, is_demo_folder, is_demo_source
from ostaf.models.devices import Placement, choose_placement
from ostaf.models.families import Family, Prediction, family_of_pipeline, supported_label
from ostaf.models.load_memory import check_load_memory
from ostaf.models.model_check import check_folder
from ostaf.progress import CancelToken, Progress, ProgressCallback, ignore_progress

offline.quiet_libraries()

DEMO = "demo"
SINGLE_FILE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
FINGERPRINT_SAMPLES = 64


@dataclass
class BaseModel:
    """A loaded base model: the pipeline, its family, placement and identity."""

    pipe: Any  # the family's diffusers pipeline (StableDiffusionPipeline, …XLPipeline)
    placement: Placement
    name: str
    source: str
    architecture: str
    fingerprint: str
    # SHA-256 of a single-file checkpoint, A1111's and Civitai's key to it; None for folders.
    file_sha256: str | None = None
    merger: OffsetMerger = field(init=False, repr=False)
    family: Family = field(init=False)

    def __post_init__(self) -> None:
        # Rendering merges attributes into the U-Net in place; the merger keeps the base values.
        self.family = family_of_pipeline(self.pipe)
        self.merger = OffsetMerger(
            self.pipe.unet, embedding_layers(self.pipe, self.family.text_encoders)
        )

    @property
    def unet(self) -> UNet2DConditionModel:
        return self.pipe.unet

    @property
    def vae_scale_factor(self) -> int:
        return int(self.pipe.vae_scale_factor)

    @property
    def resolution(self) -> int:
        """Native image size in pixels (square)."""
        return int(self.pipe.unet.config.sample_size) * self.vae_scale_factor

    @property
    def text_encoders(self) -> list[torch.nn.Module]:
        return [getattr(self.pipe, name) for name in self.family.text_encoders]

    def tuning_sizes(self) -> tuple[int, ...]:
        """The square resolutions this model can be tuned at."""
        return self.family.tuning_sizes(self.resolution, self.vae_scale_factor)

    def tuning_size(self, requested: int = 0) -> int:
        """The resolution to tune at: `requested`, checked against the model, or (0) the
        native one."""
        return self.family.check_tuning_size(
            requested, self.resolution, self.vae_scale_factor, self.name
        )

    @cached_property
    def guidance(self) -> float:
        """The render guidance (CFG scale) this model starts with: a demo model's (embedded or
        a copy) is the one its prompt following and attribute benchmark are measured at, any
        other model's its family's."""
        demo = is_demo_source(self.source) or is_demo_folder(Path(self.source))
        return DEMO_GUIDANCE if demo else self.family.render_guidance

    @property
    def prediction(self) -> Prediction:
        """What the U-Net predicts, and whether its schedule has zero terminal SNR."""
        return Prediction.of_scheduler(self.pipe.scheduler.config)

    @property
    def kind_label(self) -> str:
        """The family, with the prediction when it is not the usual ε one, e.g. 'Stable
        Diffusion XL, v-prediction, zero terminal SNR'."""
        if self.prediction.type == "epsilon":
            return self.family.label
        return f"{self.family.label}, {self.prediction.label}"


def architecture_of(unet: torch.nn.Module) -> str:
    """Hash of every U-Net tensor name and shape: attributes apply only where this matches."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unet.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
    return digest.hexdigest()[:16]


@torch.no_grad()
def fingerprint_of(unet: torch.nn.Module) -> str:
    """Hash of a strided sample of every U-Net tensor, cast to fp16 so that fp32 and fp16
    loads of one checkpoint agree (bf16 loads round differently and only warn)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(unet.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // FINGERPRINT_SAMPLES)
        sample = flat[::step][:FINGERPRINT_SAMPLES].to("cpu", torch.float16)
        digest.update(name.encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def resolve_model_source(source: str | Path) -> Path:
    """The folder or file behind a model choice ('demo', 'demo-xl' or a path), checked to
    exist."""
    from ostaf.models.demo_model import demo_model_dir, is_demo_source

    if is_demo_source(source):
        return demo_model_dir(str(source))
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelLoadError(
            f"model {path} does not exist; choose a diffusers folder or a .safetensors checkpoint"
        )
    return path


def load_base_model(
    source: str | Path = DEMO,
    device: str = "auto",
    precision: str = "auto",
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> BaseModel:
    """Load a base model from 'demo', a diffusers folder or a single-file checkpoint."""
    cancel = cancel or CancelToken()
    placement = choose_placement(device, precision)
    progress(Progress("loading", 0, 3, message="Preparing model…"))
    path = resolve_model_source(source)
    cancel.check()
    progress(Progress("loading", 1, 3, message=f"Loading {path.name}…"))
    file_sha256 = None
    if path.is_dir():
        family, _ = check_folder(path)
        check_load_memory(path, family, placement, progress)
        pipe = _load_folder(path, family, placement.dtype)
        name = _folder_display_name(path, source)
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        from ostaf.models.file_hash import file_sha256 as sha256_of
        from ostaf.models.single_file import detect_family, load_single_file

        # A foreign or broken file, or one this machine cannot hold, is refused before it
        # is hashed.
        check_load_memory(path, detect_family(path), placement, progress)
        file_sha256 = sha256_of(path, progress, cancel)
        progress(Progress("loading", 1, 3, message=f"Loading {path.name}…"))
        pipe = load_single_file(path, placement.dtype)
        name = path.stem
    elif path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"{path}: pickle checkpoints can run code when opened and are not loaded; "
            "convert it to .safetensors (or pick a diffusers folder)"
        )
    else:
        raise ModelLoadError(
            f"{path}: not a model; choose a diffusers folder (with model_index.json) "
            f"or a {supported_label()} .safetensors checkpoint"
        )
    cancel.check()
    progress(Progress("loading", 2, 3, message=f"Moving model to {placement.label}…"))
    pipe = _place(pipe, placement)
    model = BaseModel(
        pipe=pipe,
        placement=placement,
        name=name,
        source=str(source),
        architecture=architecture_of(pipe.unet),
        fingerprint=fingerprint_of(pipe.unet),
        file_sha256=file_sha256,
    )
    progress(Progress("loading", 3, 3, message=f"Model ready: {name} on {placement.label}"))
    return model


def _folder_display_name(path: Path, source: str | Path) -> str:
    from ostaf.models.demo_model import is_demo_source

    return model_display_name(source) if is_demo_source(source) else path.name


def model_display_name(source: str | Path) -> str:
    """The name a model choice is shown by, without loading it: an embedded model's own name,
    else the folder's or the file's."""
    from ostaf.models.demo_model import embedded_model, is_demo_source

    if is_demo_source(source):
        return embedded_model(source).name
    path = Path(source)
    return path.stem if path.suffix.lower() in SINGLE_FILE_SUFFIXES else path.name


def _load_folder(path: Path, family: Family, dtype: torch.dtype) -> Any:
    """Load a folder that `check_folder` passed (every config typed and consistent)."""
    _refuse_pickled_weights(path, family)
    variant = "fp16" if _only_fp16_weights(path / "unet") else None
    try:
        return family.pipeline_class().from_pretrained(
            path,
            dtype=dtype,
            variant=variant,
            local_files_only=True,
            **family.pipeline_options(),
        )
    except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) refused it
        raise ModelLoadError(
            f"{path}: holds pickled weights (.bin) that could run code when opened, so they "
            "are not loaded; use a copy of the model saved as .safetensors"
        ) from exc
    except (MemoryError, torch.OutOfMemoryError):
        raise
    except Exception as exc:  # whatever else diffusers or transformers raise: one line
        raise ModelLoadError(
            f"{path}: cannot load the model ({_first_line(exc)}); check its config files "
            "or copy the model again"
        ) from exc


def _refuse_pickled_weights(path: Path, family: Family) -> None:
    """A component with pickled weights only (no .safetensors) is refused before loading."""
    for component in ("unet", "vae", *family.text_encoders):
        files = [p for p in (path / component).iterdir() if p.is_file()]
        if any(p.suffix == ".safetensors" for p in files):
            continue
        pickled = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickled:
            raise ModelLoadError(
                f"{pickled[0]}: pickled weights can run code when opened and are not loaded; "
                "use a copy of the model saved as .safetensors"
            )


def _only_fp16_weights(unet_dir: Path) -> bool:
    names = [p.name for p in unet_dir.iterdir()]
    has_plain = any(
        n in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin") for n in names
    )
    return not has_plain and any(".fp16." in n for n in names)


def _place(pipe: Any, placement: Placement) -> Any:
    text_encoders = [getattr(pipe, n) for n in family_of_pipeline(pipe).text_encoders]
    modules = (pipe.unet, pipe.vae, *text_encoders)
    from_loader = {t.data_ptr() for module in modules for t in _tensors(module)}
    pipe.to(placement.device)
    pipe.unet.to(dtype=placement.dtype)
    for encoder in text_encoders:
        encoder.to(dtype=placement.dtype)
    # The SD and SDXL VAEs overflow in fp16 (black or NaN images): they always run in fp32.
    pipe.vae.to(dtype=torch.float32)
    for module in modules:
        _own_memory(module, from_loader)
    for module in modules:
        module.requires_grad_(False)
        module.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


@torch.no_grad()
def _own_memory(module: torch.nn.Module, from_loader: set[int]) -> None:
    """Copy every CPU tensor that no move or cast copied into memory of our own.

    safetensors hands out tensors inside a private memory map of the weight file, at offsets
    set by the file's header (4-byte aligned). Left there, an in-place rewrite of the file
    changes the loaded model, truncating it crashes the process (SIGBUS), Windows locks the
    file, and CPU kernels take other code paths than for the same weights in torch's 64-byte
    aligned memory, so the same weights gave other last bits depending on the file's layout.
    """
    copies: dict[int, torch.Tensor] = {}  # shared tensors stay shared

    def own(tensor: torch.Tensor) -> torch.Tensor | None:
        pointer = tensor.data_ptr()
        if tensor.device.type != "cpu" or pointer not in from_loader:
            return None
        if pointer not in copies:
            copies[pointer] = tensor.detach().clone(memory_format=torch.contiguous_format)
        return copies[pointer]

    for owner in module.modules():
        for parameter in owner._parameters.values():
            if parameter is not None and (copy := own(parameter)) is not None:
                parameter.data = copy
        for name, buffer in owner._buffers.items():
            if buffer is not None and (copy := own(buffer)) is not None:
                owner._buffers[name] = copy


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
