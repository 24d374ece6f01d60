"""The JSON configs of a diffusers model folder, each read with one typed schema.

A diffusers folder is described by small JSON files: model_index.json, unet/config.json,
vae/config.json, text_encoder*/config.json, tokenizer*/tokenizer_config.json and
scheduler/scheduler_config.json. Every value OSTAF reads from them, and every value whose
wrong type or range makes diffusers or transformers fail later (often only while rendering),
is typed here. A file that does not fit is refused in one line naming the file and the field,
before any weight is loaded. Family recognition, the model check, `sizes` and loading all read
the configs through `read_config`. No torch here: the GUI checks a choice with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ostaf.errors import ModelLoadError
from ostaf.file_reading import MiB, UnreadableFileError, read_regular_text
from ostaf.records import RecordError, parse_record

MAX_CONFIG_FILE = 4 * MiB  # the largest real ones (tokenizer configs) hold a few kB
MAX_LATENT_SIZE = 1024  # latent pixels: 8192 px images, four times SDXL's native size

Count = Annotated[int, Field(ge=1, le=1 << 20)]  # widths, channels, layers, heads, lengths
PerBlock = Count | list[Count]  # one value for every block, or one per block
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Beta = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
Component = Annotated[list[str | None], Field(max_length=2)]  # [library, class]
SpecialToken = str | dict[str, Any]  # a token, or transformers' serialised AddedToken


class _Config(BaseModel):
    # Configs hold many more keys than OSTAF reads; the others are diffusers' business.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ModelIndex(_Config):
    """model_index.json: the pipeline class and its components."""

    class_name: str = Field("", alias="_class_name")
    requires_aesthetics_score: bool | None = None  # set by SDXL refiners
    force_zeros_for_empty_prompt: bool | None = None
    unet: Component | None = None
    vae: Component | None = None
    text_encoder: Component | None = None
    text_encoder_2: Component | None = None
    tokenizer: Component | None = None
    tokenizer_2: Component | None = None
    scheduler: Component | None = None


class UNetConfig(_Config):
    """unet/config.json (UNet2DConditionModel)."""

    sample_size: Annotated[int, Field(ge=1, le=MAX_LATENT_SIZE)]
    cross_attention_dim: Count
    in_channels: Count = 4
    out_channels: Count = 4
    block_out_channels: Annotated[list[Count], Field(min_length=1, max_length=8)] | None = None
    layers_per_block: PerBlock | None = None
    attention_head_dim: PerBlock | None = None
    num_attention_heads: PerBlock | None = None
    transformer_layers_per_block: PerBlock | list[list[Count]] | None = None
    norm_num_groups: Count | None = None
    down_block_types: list[str] | None = None
    up_block_types: list[str] | None = None
    mid_block_type: str | None = None
    use_linear_projection: bool | None = None
    upcast_attention: bool | None = None
    addition_embed_type: str | None = None
    addition_time_embed_dim: Count | None = None  # SDXL's size/crop ids
    projection_class_embeddings_input_dim: Count | None = None


class VAEConfig(_Config):
    """vae/config.json (AutoencoderKL)."""

    block_out_channels: Annotated[list[Count], Field(min_length=1, max_length=8)]
    in_channels: Count | None = None
    out_channels: Count | None = None
    latent_channels: Count | None = None
    layers_per_block: Count | None = None
    norm_num_groups: Count | None = None
    sample_size: Count | None = None
    down_block_types: list[str] | None = None
    up_block_types: list[str] | None = None
    scaling_factor: PositiveFloat | None = None
    shift_factor: Annotated[float, Field(allow_inf_nan=False)] | None = None
    force_upcast: bool | None = None

    @property
    def scale_factor(self) -> int:
        """Image pixels per latent pixel: each level but the last halves the size."""
        return 2 ** (len(self.block_out_channels) - 1)


class TextEncoderConfig(_Config):
    """text_encoder*/config.json (transformers' CLIPTextConfig)."""

    hidden_size: Count | None = None
    intermediate_size: Count | None = None
    num_hidden_layers: Count | None = None
    num_attention_heads: Count | None = None
    max_position_embeddings: Count | None = None
    vocab_size: Count | None = None
    projection_dim: Count | None = None
    hidden_act: str | None = None
    layer_norm_eps: PositiveFloat | None = None
    bos_token_id: Annotated[int, Field(ge=0)] | None = None
    eos_token_id: Annotated[int, Field(ge=0)] | None = None
    pad_token_id: Annotated[int, Field(ge=0)] | None = None


class TokenizerConfig(_Config):
    """tokenizer*/tokenizer_config.json (CLIPTokenizer)."""

    model_max_length: Count | None = None
    bos_token: SpecialToken | None = None
    eos_token: SpecialToken | None = None
    pad_token: SpecialToken | None = None
    unk_token: SpecialToken | None = None
    do_lower_case: bool | None = None


class SchedulerConfig(_Config):
    """scheduler/scheduler_config.json: the training noise schedule every sampler and tuning
    are built from (whatever its class, OSTAF rebuilds it as its own samplers)."""

    class_name: str = Field("", alias="_class_name")
    num_train_timesteps: Annotated[int, Field(ge=2, le=100_000)] = 1000
    beta_start: Beta | None = None
    beta_end: Beta | None = None
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] | None = None
    trained_betas: list[Beta] | None = None
    # What tuning's loss and every sampler support; anything else is refused at load.
    prediction_type: Literal["epsilon", "v_prediction"] = "epsilon"
    rescale_betas_zero_snr: bool = False
    timestep_spacing: Literal["leading", "trailing", "linspace"] | None = None
    steps_offset: Annotated[int, Field(ge=0, le=1000)] | None = None
    interpolation_type: Literal["linear", "log_linear"] | None = None
    use_karras_sigmas: bool | None = None
    use_exponential_sigmas: bool | None = None
    use_beta_sigmas: bool | None = None
    clip_sample: bool | None = None
    set_alpha_to_one: bool | None = None
    thresholding: bool | None = None


C = TypeVar("C", bound=_Config)


def read_config(path: Path, schema: type[C]) -> C:
    """A config file read as `schema`; ModelLoadError naming the file and the wrong field."""
    try:
        return parse_record(schema, read_regular_text(path, MAX_CONFIG_FILE))
    except FileNotFoundError as exc:
        raise ModelLoadError(
            f"{path} is missing; the model folder is incomplete, copy the whole folder again"
        ) from exc
    except UnreadableFileError as exc:
        raise ModelLoadError(f"{path} {exc}; copy the model again") from exc
    except (OSError, RecordError) as exc:
        raise ModelLoadError(f"{path} is damaged ({exc}); fix it or copy the model again") from exc


@dataclass(frozen=True)
class FolderConfigs:
    """Every config of a diffusers folder, typed and checked against each other."""

    index: ModelIndex
    unet: UNetConfig
    vae: VAEConfig
    text_encoders: dict[str, TextEncoderConfig]
    tokenizers: dict[str, TokenizerConfig]
    scheduler: SchedulerConfig


def read_folder_configs(
    folder: Path, text_encoders: Sequence[str], tokenizers: Sequence[str]
) -> FolderConfigs:
    """Read every config of `folder` (the family names its text encoders and tokenizers,
    paired in order) and check that they fit together."""
    encoders = {
        name: read_config(folder / name / "config.json", TextEncoderConfig)
        for name in text_encoders
    }
    # A tokenizer folder may hold its vocabulary alone (transformers' defaults then apply).
    tokenizer_configs = {
        name: read_config(folder / name / "tokenizer_config.json", TokenizerConfig)
        if (folder / name / "tokenizer_config.json").exists()
        else TokenizerConfig()
        for name in tokenizers
    }
    configs = FolderConfigs(
        index=read_config(folder / "model_index.json", ModelIndex),
        unet=read_config(folder / "unet" / "config.json", UNetConfig),
        vae=read_config(folder / "vae" / "config.json", VAEConfig),
        text_encoders=encoders,
        tokenizers=tokenizer_configs,
        scheduler=read_config(folder / "scheduler" / "scheduler_config.json", SchedulerConfig),
    )
    _check_together(folder, configs)
    return configs


def _check_together(folder: Path, configs: FolderConfigs) -> None:
    # Widths that disagree load without a word and fail in the first U-Net call.
    widths = [c.hidden_size for c in configs.text_encoders.values()]
    if widths and all(w is not None for w in widths):
        total = sum(w for w in widths if w is not None)
        if total != configs.unet.cross_attention_dim:
            encoders = " and ".join(str(folder / n / "config.json") for n in configs.text_encoders)
            raise ModelLoadError(
                f"{folder / 'unet' / 'config.json'}: cross_attention_dim is "
                f"{configs.unet.cross_attention_dim} but {encoders} give {total}-wide text "
                "states; the folder mixes parts of different models, copy it again"
            )
    for (name, tokenizer), encoder in zip(
        configs.tokenizers.items(), configs.text_encoders.values(), strict=False
    ):
        length, positions = tokenizer.model_max_length, encoder.max_position_embeddings
        if length is not None and positions is not None and length > positions:
            raise ModelLoadError(
                f"{folder / name / 'tokenizer_config.json'}: model_max_length is {length} but "
                f"its text encoder has {positions} positions; fix that value or copy the "
                "model again"
            )
