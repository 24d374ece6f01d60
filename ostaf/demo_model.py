"""The embedded demo base model: a tiny Stable-Diffusion-shaped model built from a seed.

It lets the app and the CLI do their whole job on a fresh machine with nothing downloaded.
The same seed and library versions give the same bytes; the folder is cached in the user
cache dir and rebuilt when missing or damaged.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ostaf import paths

DEMO_SEED = 20240316
DEMO_NAME = "OSTAF demo (random, 64 px)"
DEMO_VERSION = "random-v1"
DEMO_RESOLUTION = 64
# Every printable ASCII word piece is byte-level; these whole words get merges so that the
# prompts people type in the demo map to few tokens.
DEMO_WORDS = (
    "a", "photo", "of", "painting", "in", "style", "sks", "object", "picture", "the",
    "red", "green", "blue", "yellow", "purple", "orange", "black", "white",
    "circle", "square", "triangle", "star", "heart", "cat", "dog", "vase", "on", "background",
)  # fmt: skip


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


def build_demo_pipeline(seed: int = DEMO_SEED) -> Any:
    """Build the demo StableDiffusionPipeline in memory, deterministically from `seed`."""
    from ostaf.offline import quiet_libraries

    quiet_libraries()
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = demo_tokenizer_files()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    tokenizer.model_max_length = 77

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        )
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=DEMO_RESOLUTION,
    )
    torch.manual_seed(seed + 2)
    unet = UNet2DConditionModel(
        sample_size=DEMO_RESOLUTION // 4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=64,
        attention_head_dim=(2, 4),
        norm_num_groups=16,
    )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_demo_model(out_dir: Path, seed: int = DEMO_SEED) -> Path:
    """Write the demo model as a diffusers folder at `out_dir` (which must not exist yet)."""
    pipe = build_demo_pipeline(seed)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "ostaf_demo.json").write_text(
        json.dumps({"name": DEMO_NAME, "version": DEMO_VERSION, "seed": seed}, indent=2) + "\n"
    )
    return out_dir


def _folder_is_complete(folder: Path) -> bool:
    return (folder / "ostaf_demo.json").is_file() and (folder / "model_index.json").is_file()


def demo_model_dir() -> Path:
    """The cached demo model folder, built on first use (atomically: never a torn folder)."""
    key = hashlib.sha256(f"{DEMO_VERSION}:{DEMO_SEED}:{_library_versions()}".encode()).hexdigest()
    target = paths.cache_dir() / f"demo-model-{key[:12]}"
    if _folder_is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-model-", dir=target.parent))
    try:
        write_demo_model(staging / "model")
        if target.exists():  # a damaged earlier copy: replace it
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _library_versions() -> str:
    from importlib.metadata import version

    return ",".join(version(p) for p in ("torch", "diffusers", "transformers"))
