"""diffusers → original (LDM / CompVis, SGM) key layout, for writing test single-file checkpoints.

The inverse of what diffusers' single-file loader undoes, written from the LDM module layout
(openaimodel.UNetModel, the KL autoencoder, the FrozenCLIP / FrozenOpenCLIP embedders) so that
tiny models can be saved the way real SD 1.x/2.x `.safetensors` files are. SDXL's SGM files
use the same U-Net and VAE names (plus `label_emb` for the extra inputs) and keep their two
text encoders under `conditioner.embedders.0.transformer.` and `conditioner.embedders.1.model.`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

StateDict = dict[str, torch.Tensor]

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer.text_model."
CLIP_LEGACY = "cond_stage_model.transformer."  # as older tools write SD 1.x text encoders
OPEN_CLIP = "cond_stage_model.model."
SDXL_CLIP = "conditioner.embedders.0.transformer.text_model."
SDXL_CLIP_LEGACY = "conditioner.embedders.0.transformer."  # kohya's saver under transformers 5
SDXL_OPEN_CLIP = "conditioner.embedders.1.model."

RESNET_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",  # SDXL's pooled-text and size/crop-ids MLP
    "add_embedding.linear_2": "label_emb.0.2",
}
VAE_ATTENTION_NAMES = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _rename_first(rest: str, names: dict[str, str]) -> str:
    """Replace the leading module name of `rest` by its LDM name (if it has one)."""
    for new, old in names.items():
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_to_ldm(state: StateDict, layers_per_block: int) -> StateDict:
    """A UNet2DConditionModel state dict in `model.diffusion_model.*` (openaimodel) names."""
    per_down = layers_per_block + 1  # LDM gives each down level its resnets plus a downsampler
    up_has_attention = {
        int(m.group(1)) for k in state if (m := re.match(r"up_blocks\.(\d+)\.attentions", k))
    }

    rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
        (
            r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
            lambda m: (
                f"input_blocks.{1 + int(m[1]) * per_down + int(m[2])}.0."
                + _rename_first(m[3], RESNET_NAMES)
            ),
        ),
        (
            r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)",
            lambda m: f"input_blocks.{1 + int(m[1]) * per_down + int(m[2])}.1.{m[3]}",
        ),
        (
            r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)",
            lambda m: f"input_blocks.{(int(m[1]) + 1) * per_down}.0.op.{m[2]}",
        ),
        (
            r"mid_block\.resnets\.(\d+)\.(.+)",
            lambda m: f"middle_block.{2 * int(m[1])}." + _rename_first(m[2], RESNET_NAMES),
        ),
        (r"mid_block\.attentions\.0\.(.+)", lambda m: f"middle_block.1.{m[1]}"),
        (
            r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)",
            lambda m: (
                f"output_blocks.{int(m[1]) * per_down + int(m[2])}.0."
                + _rename_first(m[3], RESNET_NAMES)
            ),
        ),
        (
            r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)",
            lambda m: f"output_blocks.{int(m[1]) * per_down + int(m[2])}.1.{m[3]}",
        ),
        (
            # The upsampler follows the last layer of its level, after the attention if any.
            r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)",
            lambda m: (
                f"output_blocks.{int(m[1]) * per_down + layers_per_block}."
                f"{2 if int(m[1]) in up_has_attention else 1}.conv.{m[2]}"
            ),
        ),
    ]
    out: StateDict = {}
    for key, tensor in state.items():
        for pattern, rename in rules:
            match = re.fullmatch(pattern, key)
            if match:
                new_key = rename(match)
                break
        else:
            new_key = _rename_first(key, UNET_TOP)
            if new_key == key:
                raise KeyError(f"no LDM name for U-Net key {key}")
        out[UNET + new_key] = tensor
    return out


def vae_to_ldm(state: StateDict, num_blocks: int) -> StateDict:
    """An AutoencoderKL state dict in `first_stage_model.*` names (1×1-conv attention)."""
    out: StateDict = {}
    for key, tensor in state.items():
        new_key = key.replace("conv_norm_out", "norm_out")
        if match := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            new_key = f"{match[1]}.mid.block_{int(match[2]) + 1}.{match[3]}"
        elif match := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
            new_key = f"{match[1]}.mid.attn_1." + _rename_first(match[2], VAE_ATTENTION_NAMES)
            if tensor.ndim == 2:  # LDM's attention projections are 1×1 convolutions
                tensor = tensor[:, :, None, None]
        elif match := re.fullmatch(
            r"encoder\.down_blocks\.(\d+)\.(resnets|downsamplers)\.(.+)", key
        ):
            kind = "block" if match[2] == "resnets" else "downsample"
            rest = match[3].removeprefix("0.") if kind == "downsample" else match[3]
            new_key = f"encoder.down.{match[1]}.{kind}.{rest}"
        elif match := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.(resnets|upsamplers)\.(.+)", key):
            # LDM numbers decoder levels from the lowest resolution up, diffusers the reverse.
            level = num_blocks - 1 - int(match[1])
            kind = "block" if match[2] == "resnets" else "upsample"
            rest = match[3].removeprefix("0.") if kind == "upsample" else match[3]
            new_key = f"decoder.up.{level}.{kind}.{rest}"
        out[VAE + new_key.replace("conv_shortcut", "nin_shortcut")] = tensor
    return out


def clip_to_ldm(state: StateDict, prefix: str = CLIP) -> StateDict:
    """A CLIPTextModel state dict in SD 1.x `cond_stage_model.transformer.text_model.*` names
    (or SDXL's first embedder's, or the older layout without `text_model.`, with `prefix`)."""
    out = {prefix + key.removeprefix("text_model."): tensor for key, tensor in state.items()}
    # Real SD 1.x files carry this buffer (transformers no longer saves it); loaders must cope.
    max_positions = out[prefix + "embeddings.position_embedding.weight"].shape[0]
    out[prefix + "embeddings.position_ids"] = torch.arange(max_positions)[None]
    return out


def open_clip_layers(state: StateDict, prefix: str) -> StateDict:
    """A CLIP text tower (no `text_model.` prefix) in OpenCLIP's names under `prefix`."""
    state = dict(state)
    out: StateDict = {
        prefix + "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        prefix + "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        prefix + "ln_final.weight": state.pop("final_layer_norm.weight"),
        prefix + "ln_final.bias": state.pop("final_layer_norm.bias"),
    }
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")})
    for i in layers:
        src = f"encoder.layers.{i}."
        dst = f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            # OpenCLIP uses torch's MultiheadAttention: q, k and v stacked in one projection.
            out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                [state.pop(f"{src}self_attn.{p}_proj.{kind}") for p in ("q", "k", "v")]
            )
            out[dst + f"attn.out_proj.{kind}"] = state.pop(f"{src}self_attn.out_proj.{kind}")
            out[dst + f"ln_1.{kind}"] = state.pop(f"{src}layer_norm1.{kind}")
            out[dst + f"ln_2.{kind}"] = state.pop(f"{src}layer_norm2.{kind}")
            out[dst + f"mlp.c_fc.{kind}"] = state.pop(f"{src}mlp.fc1.{kind}")
            out[dst + f"mlp.c_proj.{kind}"] = state.pop(f"{src}mlp.fc2.{kind}")
    if state:
        raise KeyError(f"no OpenCLIP name for {sorted(state)}")
    return out


def sdxl_open_clip_to_sgm(state: StateDict) -> StateDict:
    """A CLIPTextModelWithProjection state dict as SDXL's OpenCLIP bigG embedder: every layer
    (SDXL reads the penultimate hidden state and pools the last), the text projection stored
    transposed as OpenCLIP keeps it (width, projection), and the unused logit scale."""
    tower = {
        k.removeprefix("text_model."): v for k, v in state.items() if k != "text_projection.weight"
    }
    out = open_clip_layers(tower, SDXL_OPEN_CLIP)
    out[SDXL_OPEN_CLIP + "text_projection"] = state["text_projection.weight"].t().contiguous()
    out[SDXL_OPEN_CLIP + "logit_scale"] = torch.tensor(4.6052)
    return out


def open_clip_to_ldm(state: StateDict, projection_dim: int, seed: int = 0) -> StateDict:
    """A CLIPTextModel state dict as SD 2.x's OpenCLIP text tower (`cond_stage_model.model.*`).

    SD 2.x conditions on the penultimate layer, so the file holds one more residual block than
    the diffusers model, and a text projection; both are filled from `seed` (loaders drop them).
    """
    out = open_clip_layers({k.removeprefix("text_model."): v for k, v in state.items()}, OPEN_CLIP)
    layers = sorted({int(k.split(".")[4]) for k in out if ".resblocks." in k})
    generator = torch.Generator().manual_seed(seed)
    penultimate = f"{OPEN_CLIP}transformer.resblocks.{layers[-1]}."
    last = f"{OPEN_CLIP}transformer.resblocks.{layers[-1] + 1}."
    for key in [k for k in out if k.startswith(penultimate)]:
        out[last + key.removeprefix(penultimate)] = torch.randn(out[key].shape, generator=generator)
    width = out[OPEN_CLIP + "ln_final.weight"].shape[0]
    out[OPEN_CLIP + "text_projection"] = torch.randn(width, projection_dim, generator=generator)
    out[OPEN_CLIP + "logit_scale"] = torch.tensor(4.6052)
    return out
