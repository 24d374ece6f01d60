"""What a base-model family is: the one place where SD 1.x, SD 2.x and SDXL differ.

A family says how it is recognised (from a single file's tensor names and shapes, or a
diffusers folder's configs), where its shipped config folder is, which pipeline class runs
it, how a prompt becomes the U-Net's inputs, which sizes it offers, which region each kind of
attribute tunes, and how its LoRAs are named and labelled. Tuning, rendering, export, the
memory preflight, the model check and the GUI ask the family instead of branching on it.

Nothing here imports torch or diffusers at module level: the GUI and the model check read
families without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ostaf import paths
from ostaf.errors import SettingsError
from ostaf.method import regions

if TYPE_CHECKING:
    import torch

    from ostaf.models.component_configs import ModelIndex

UNET = "model.diffusion_model."  # the U-Net's prefix in original (LDM/SGM) single files
SizeChoice = tuple[str, int, int]  # label, width, height


@dataclass(frozen=True)
class CheckpointKeys:
    """A single-file checkpoint as far as recognition needs it: tensor names and shapes."""

    shapes: Mapping[str, tuple[int, ...]]

    def has(self, key: str) -> bool:
        return key in self.shapes

    def has_prefix(self, *prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in self.shapes)

    def dim(self, key: str, axis: int) -> int | None:
        """One dimension of a tensor, None when the file lacks it (or it has too few axes)."""
        shape = self.shapes.get(key)
        if shape is None or len(shape) <= axis:
            return None
        return int(shape[axis])


@dataclass(frozen=True)
class Prediction:
    """What a model's U-Net predicts, and whether it was trained with zero terminal SNR
    (betas rescaled so that the last timestep is pure noise)."""

    type: str = "epsilon"  # or "v_prediction"
    zero_terminal_snr: bool = False

    @property
    def label(self) -> str:
        """'epsilon prediction', 'v-prediction' or 'v-prediction, zero terminal SNR'."""
        if self.type != "v_prediction":
            return "epsilon prediction"
        return "v-prediction, zero terminal SNR" if self.zero_terminal_snr else "v-prediction"

    def scheduler_settings(self) -> dict[str, Any]:
        """The scheduler config entries that run such a model as it was trained: tuning's
        DDPM and every sampler are built from them."""
        settings: dict[str, Any] = {"prediction_type": self.type}
        if self.zero_terminal_snr:
            # The zero-SNR paper's sampling: start at the last timestep ("trailing"), where
            # the rescaled schedule is pure noise; "leading" would never reach it.
            settings |= {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}
        return settings

    @classmethod
    def of_scheduler(cls, config: Mapping[str, Any]) -> Prediction:
        """The prediction a (loaded) scheduler config runs."""
        return cls(
            str(config.get("prediction_type", "epsilon")),
            bool(config.get("rescale_betas_zero_snr", False)),
        )


@dataclass
class Conditioning:
    """What a prompt gives the U-Net: text states (1, T, D) and, for SDXL, extra inputs
    (`added_cond_kwargs`: pooled text embedding and size/crop ids), each (1, …)."""

    hidden: torch.Tensor
    added: dict[str, torch.Tensor] = field(default_factory=dict)


class Family:
    """One base-model family. A subclass sets the class attributes and overrides only what
    differs from these defaults (which are Stable Diffusion 1.x's)."""

    id: ClassVar[str]  # stored in attribute files: never rename
    label: ClassVar[str]  # shown to users, e.g. "Stable Diffusion XL"
    config_folder: ClassVar[str]  # resources/model_configs/<this>
    pipeline_name: ClassVar[str]  # the diffusers pipeline class
    folder_pipelines: ClassVar[tuple[str, ...]]  # model_index.json classes this family loads
    text_encoders: ClassVar[tuple[str, ...]] = ("text_encoder",)
    tokenizers: ClassVar[tuple[str, ...]] = ("tokenizer",)
    context_width: ClassVar[int]  # width of the text states the published models read
    native_size: ClassVar[int]  # the published models' resolution in px
    lora_version: ClassVar[str]  # kohya's ss_base_model_version
    # The render guidance (CFG scale) a model of this family starts with: the value its
    # published pipeline uses by default (the user changes it in the Render panel).
    render_guidance: ClassVar[float] = 7.5
    # Where a single file keeps its CLIP ViT-L/14 (transformers' layout), if it has one.
    clip_l_prefix: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<family {self.id}>"

    # --- recognition ---------------------------------------------------------------------

    @property
    def components(self) -> tuple[str, ...]:
        """The sub-folders a diffusers folder of this family must have."""
        return ("unet", "vae", *self.text_encoders, *self.tokenizers, "scheduler")

    def text_encoder_in(self, keys: CheckpointKeys) -> bool:
        """The single file holds this family's text encoder(s)."""
        raise NotImplementedError

    def unet_in(self, keys: CheckpointKeys) -> bool:
        """The single file's U-Net has this family's layout (judged by the U-Net alone)."""
        raise NotImplementedError

    def unsupported_variant(self, keys: CheckpointKeys) -> str | None:
        """What the file is when it is a variant of this family that cannot be used here
        (e.g. 'a Stable Diffusion XL refiner'), else None."""
        return None

    def prediction_in(self, keys: CheckpointKeys) -> Prediction | None:
        """The prediction a single file declares by its own keys, if any."""
        return None

    def claims_folder(self, pipeline: str, context_width: int | None) -> bool:
        """A diffusers folder with this model_index class whose U-Net reads `context_width`-wide
        text states (None: no U-Net config) is this family's."""
        return pipeline in self.folder_pipelines

    def unsupported_folder(self, index: ModelIndex) -> str | None:
        """What a folder of this family is when it cannot be used here, else None."""
        return None

    # --- loading -------------------------------------------------------------------------

    def config_dir(self) -> Path:
        """The shipped config-only diffusers folder (no weights) for single files."""
        return paths.resource("model_configs", self.config_folder)

    def pipeline_class(self) -> Any:
        """The diffusers pipeline class that runs this family."""
        import diffusers

        return getattr(diffusers, self.pipeline_name)

    def pipeline_options(self) -> dict[str, Any]:
        """Extra keyword arguments for loading the pipeline (components we never load)."""
        return {}

    def on_prediction_type(self, pipe: Any, prediction_type: str) -> None:
        """Adjust a loaded pipeline to a prediction type the file declared (SD 2.x base)."""
        size = self.sample_size_for(prediction_type, int(pipe.unet.config.sample_size))
        if size != pipe.unet.config.sample_size:
            pipe.unet.register_to_config(sample_size=size)
            pipe.vae.register_to_config(sample_size=size * int(pipe.vae_scale_factor))

    def sample_size_for(self, prediction_type: str, sample_size: int) -> int:
        """The U-Net's latent size for a prediction type a single file declared, given its
        config folder's `sample_size` (SD 2.x: the ε models are the 512 px ones)."""
        return sample_size

    # --- text conditioning ---------------------------------------------------------------

    def encode_prompt(
        self, pipe: Any, prompt: str, device: torch.device, size: tuple[int, int]
    ) -> Conditioning:
        """The U-Net's inputs for `prompt` at `size` (height, width), as the pipeline makes
        them when it renders that prompt at that size."""
        hidden, _ = pipe.encode_prompt(prompt, device, 1, False)  # (1, T, D)
        return Conditioning(hidden)

    def added_inputs(self, unet_config: Mapping[str, Any]) -> dict[str, int]:
        """The U-Net's extra inputs and their width per sample (for the memory preflight)."""
        return {}

    def prompt_inputs(self, cond: Conditioning) -> dict[str, Any]:
        """The pipeline's keyword arguments that stand for a prompt encoded as `cond` (the
        negative prompt is left to the pipeline)."""
        return {"prompt_embeds": cond.hidden}

    # --- sizes ---------------------------------------------------------------------------

    def offered_sizes(self, native: int) -> tuple[SizeChoice, ...]:
        """Render sizes offered for a model of `native` px: native first, then others."""
        wide = (native * 3 // 2) // 8 * 8
        return (
            (f"Native {native}×{native}", native, native),
            (f"Portrait {native}×{wide}", native, wide),
            (f"Landscape {wide}×{native}", wide, native),
            (f"Large {2 * native}×{2 * native}", 2 * native, 2 * native),
        )

    def tuning_sizes(self, native: int, vae_scale_factor: int) -> tuple[int, ...]:
        """Square tuning resolutions: multiples of 8 latent pixels from half to twice the
        native size (the U-Net downsamples latents three times)."""
        step = 8 * vae_scale_factor
        low = max(step, -(-native // 2 // step) * step)
        return tuple(range(low, 2 * native + 1, step))

    def check_tuning_size(
        self, requested: int, native: int, vae_scale_factor: int, model_name: str
    ) -> int:
        """The resolution to tune at: `requested`, checked against the model, or (0) the
        native one; SettingsError naming the sizes the model takes."""
        if requested == 0:
            return native
        allowed = self.tuning_sizes(native, vae_scale_factor)
        if requested not in allowed:
            raise SettingsError(
                f"tuning size {requested} px does not fit {model_name}: use a multiple of "
                f"{8 * vae_scale_factor} from {allowed[0]} to {allowed[-1]} (its native size "
                f"is {native})"
            )
        return requested

    # --- regions -------------------------------------------------------------------------

    def region(self, kind: regions.AttributeKind) -> regions.Region:
        """The region a kind of attribute tunes: the method's map, unless a family needs
        otherwise (read at call time, so the method's defaults stay the one source)."""
        return regions.REGION_BY_KIND[regions.AttributeKind(kind)]

    # --- LoRA ----------------------------------------------------------------------------

    def kohya_name(self, module_path: str) -> str:
        """kohya's LoRA name of a U-Net module: SD 1.x/2.x LoRAs use diffusers paths."""
        return "lora_unet_" + module_path.replace(".", "_")

    def lora_metadata(self, fmt: str, resolution: int, prediction_type: str) -> dict[str, str]:
        """kohya's and the model spec's keys that tools read to tell which models a LoRA is
        for (A1111/Forge: ss_base_model_version, ss_v2; browsers: modelspec.architecture)."""
        return {
            "ss_base_model_version": self.lora_version,
            "ss_v2": "False",
            "modelspec.architecture": f"{self.architecture(resolution, prediction_type)}/lora",
            "modelspec.implementation": "diffusers",
            "modelspec.prediction_type": "v"
            if self.is_v(resolution, prediction_type)
            else "epsilon",
        }

    def is_v(self, resolution: int, prediction_type: str) -> bool:
        """Whether a base model tuned at `resolution` predicts v ('' = not recorded)."""
        return prediction_type == "v_prediction"

    def architecture(self, resolution: int, prediction_type: str) -> str:
        """The Stability AI model spec's architecture id of this family's base models."""
        raise NotImplementedError
