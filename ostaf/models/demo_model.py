"""The embedded demo base model: a small Stable-Diffusion-shaped model of the demo world.

It lets the app and the CLI do their whole job on a fresh machine with nothing downloaded,
and draws the world of `ostaf.world` (coloured, patterned shapes in three drawing styles), so
that what an attribute transfers can be seen and measured. The trained weights ship in
`resources/demo_model`; `python -m ostaf.world.train --out DIR` rebuilds them from a seed.
This module holds the architecture, the tokenizer and where the shipped folder lives.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ostaf import paths
from ostaf.errors import ModelLoadError, StorageError
from ostaf.world.scenes import WORLD_WORDS

DEMO = "demo"  # the source word of this model (Settings, --model)
DEMO_SEED = 20240316
DEMO_NAME = "OSTAF demo world (64 px)"
DEMO_VERSION = "world-v1"
DEMO_RESOLUTION = 64
# The render guidance the demo models start with, the one their prompt following and the
# attribute benchmark are measured at: with the app's sampler (DPM++ 2M Karras) 7.5 did no
# better on either model (BENCHMARKS.md, "Render guidance per family").
DEMO_GUIDANCE = 5.0
SHIPPED_DEMO_DIR = paths.RESOURCES / "demo_model"
TRAIN_COMMAND = "python -m ostaf.world.train --out resources/demo_model"
MARKER = "ostaf_demo.json"

# Words of the tuning templates ("a photo of a sks object", "a painting of a picture in sks
# style") and a few that people type in the demo: each is one token, like the world's words.
TEMPLATE_WORDS = ("photo", "of", "painting", "in", "sks", "object", "picture", "the")
EXTRA_WORDS = ("cat", "dog", "vase")
DEMO_WORDS: tuple[str, ...] = tuple(dict.fromkeys((*WORLD_WORDS, *TEMPLATE_WORDS, *EXTRA_WORDS)))


@dataclass(frozen=True)
class DemoArchitecture:
    """Sizes of the demo model's three networks (the scheduler is SD 1.x's)."""

    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    vae_channels: tuple[int, ...] = (16, 32, 64)
    unet_channels: tuple[int, ...] = (32, 64)
    unet_heads: tuple[int, ...] = (2, 4)
    unet_layers_per_block: int = 1
    norm_groups: int = 16
    max_tokens: int = 77


DEMO_ARCHITECTURE = DemoArchitecture()


def _byte_vocab() -> dict[str, int]:
    """CLIP's byte-to-unicode table: the 256 byte-level characters (DESIGN §7)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    chars = [chr(c) for c in codes]
    vocab = {ch: i for i, ch in enumerate(chars)}
    vocab.update({ch + "</w>": i + 256 for i, ch in enumerate(chars)})
    return vocab


def demo_tokenizer_files(
    words: tuple[str, ...] = DEMO_WORDS,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """vocab.json content and merges for a byte-level CLIP tokenizer knowing `words`."""
    vocab = _byte_vocab()
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = _apply_merges([*word[:-1], word[-1] + "</w>"], merges)
        # Earlier words' merges may already split this word differently ("r e" from "red"
        # inside "green"); extend the table from how it splits the word now, until whole.
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
            pieces = _apply_merges(pieces, merges)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def _apply_merges(pieces: list[str], merges: list[tuple[str, str]]) -> list[str]:
    """Byte-pair encoding of one word: apply the best-ranked merge until none applies."""
    rank = {pair: i for i, pair in enumerate(merges)}
    while len(pieces) > 1:
        pairs = [
            (rank.get((a, b), len(rank)), i) for i, (a, b) in enumerate(itertools.pairwise(pieces))
        ]
        best, index = min(pairs)
        if best == len(rank):
            break
        pieces = [*pieces[:index], pieces[index] + pieces[index + 1], *pieces[index + 2 :]]
    return pieces


def build_demo_pipeline(
    seed: int = DEMO_SEED, architecture: DemoArchitecture = DEMO_ARCHITECTURE
) -> Any:
    """The demo StableDiffusionPipeline with freshly initialised (untrained) weights."""
    from ostaf.models.offline import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    arch = architecture
    vocab, merges = demo_tokenizer_files()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    tokenizer.model_max_length = arch.max_tokens

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=arch.text_width,
            intermediate_size=4 * arch.text_width,
            num_hidden_layers=arch.text_layers,
            num_attention_heads=arch.text_heads,
            max_position_embeddings=arch.max_tokens,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    torch.manual_seed(seed + 1)
    levels = len(arch.vae_channels)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=arch.vae_channels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=arch.norm_groups,
        sample_size=DEMO_RESOLUTION,
        # It is trained on crops, where a global attention would see a different context.
        mid_block_add_attention=False,
        # Training folds the latents' centre and spread into quant_conv/post_quant_conv, so
        # the encoder already emits unit-variance latents: nothing more to scale.
        scaling_factor=1.0,
    )
    torch.manual_seed(seed + 2)
    depth = len(arch.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=DEMO_RESOLUTION // 2 ** (levels - 1),
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * depth,
        up_block_types=("CrossAttnUpBlock2D",) * depth,
        block_out_channels=arch.unet_channels,
        layers_per_block=arch.unet_layers_per_block,
        cross_attention_dim=arch.text_width,
        attention_head_dim=arch.unet_heads,
        norm_num_groups=arch.norm_groups,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# Stable Diffusion 1.x's noise schedule, as its scheduler_config.json states it.
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def demo_record(seed: int, architecture: DemoArchitecture, **extra: Any) -> dict[str, Any]:
    """What `ostaf_demo.json` says about a demo model folder."""
    return {
        "name": DEMO_NAME,
        "version": DEMO_VERSION,
        "seed": seed,
        "architecture": asdict(architecture),
        **extra,
    }


@dataclass(frozen=True)
class EmbeddedModel:
    """A demo model shipped with the app, chosen by its source word (Settings' `model_source`
    and `--model`): 'demo' (SD 1.x-shaped, the fast one) or 'demo-xl' (SDXL-shaped)."""

    source: str
    name: str
    folder: Path
    train_command: str
    training_time: str  # on a 2-core CPU, for the message when the folder is missing
    summary: str  # a few words for Settings


def embedded_models() -> dict[str, EmbeddedModel]:
    """Every embedded demo model by its source word, the first-start default first."""
    from ostaf.models import demo_model_xl as xl

    return {
        DEMO: EmbeddedModel(
            DEMO,
            DEMO_NAME,
            SHIPPED_DEMO_DIR,
            TRAIN_COMMAND,
            "about two hours",
            "SD 1.x-shaped, the quickest",
        ),
        xl.DEMO_XL: EmbeddedModel(
            xl.DEMO_XL,
            xl.DEMO_XL_NAME,
            xl.SHIPPED_DEMO_XL_DIR,
            xl.TRAIN_XL_COMMAND,
            "about two hours",
            "SDXL-shaped, two text encoders",
        ),
    }


def is_demo_source(source: str | Path) -> bool:
    """Whether a model choice names an embedded demo model rather than a path."""
    return str(source) in embedded_models()


def embedded_model(source: str | Path) -> EmbeddedModel:
    """The embedded demo model a source word names (KeyError for a path)."""
    return embedded_models()[str(source)]


def is_demo_folder(folder: Path) -> bool:
    """Whether `folder` holds a complete demo model (marker, index and weights)."""
    return (folder / MARKER).is_file() and all(
        (folder / part).is_file() for part in (*_WEIGHT_FILES, "model_index.json")
    )


_WEIGHT_FILES = (
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
)


def demo_model_dir(source: str = DEMO) -> Path:
    """The shipped folder of an embedded demo model (read-only: nothing is written into it)."""
    model = embedded_model(source)
    folder = SHIPPED_DEMO_DIR if source == DEMO else model.folder  # the first is patched in tests
    if not is_demo_folder(folder):
        raise ModelLoadError(
            f"the demo model '{source}' is missing from {folder}; rebuild it with "
            f"`{model.train_command}` ({model.training_time} on a 2-core CPU) or choose "
            "another model in Settings"
        )
    return folder


def write_demo_model(out_dir: Path, model: str = DEMO) -> Path:
    """Copy a demo model to `out_dir` (new, or an empty folder) as a diffusers folder. The
    copy is made beside it and renamed into place complete: a full disk leaves nothing."""
    from ostaf.library.atomic import TEMP_SUFFIX, describe_os_error

    source = demo_model_dir(model)
    out_dir = Path(out_dir)
    building = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    failures: list[OSError] = []

    def copy(src: str, dst: str) -> object:
        # copytree gathers every file's error into one list of tuples; the first error
        # itself says what went wrong (a full disk) in a sentence.
        try:
            return shutil.copy2(src, dst)
        except OSError as exc:
            failures.append(exc)
            raise

    try:
        shutil.copytree(
            source, building, ignore=shutil.ignore_patterns("*.png", "*.md"), copy_function=copy
        )
        if out_dir.is_dir():
            out_dir.rmdir()  # only an empty folder gets here; the complete copy takes its place
        os.rename(building, out_dir)
    except OSError as exc:
        shutil.rmtree(building, ignore_errors=True)
        first = failures[0] if failures else exc
        raise StorageError(
            f"cannot write the demo model to {out_dir}: {describe_os_error(first)}"
        ) from exc
    return out_dir


def read_demo_record(folder: Path = SHIPPED_DEMO_DIR) -> dict[str, Any]:
    """The shipped model's `ostaf_demo.json` (recipe, timings, prompt-following score)."""
    return dict(json.loads((folder / MARKER).read_text()))
