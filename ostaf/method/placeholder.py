"""The placeholder's word embedding, learned with the offsets (optional, per kind).

A placeholder such as "sks" already means something to a model (the demo model draws a heart
for it; Stable Diffusion a rifle), and an offset in the U-Net has to overcome that meaning
on every prompt. Tuning can also shift the placeholder's input embedding in each text
encoder: one vector per token id of the placeholder, added to the token embedding wherever a
prompt holds that id. Shifts are keyed "<encoder>.<token id>" (e.g. "text_encoder.644",
"text_encoder_2.2368"), stored in the attribute file beside the factors, and applied at the
attribute's intensity like the offsets: λ · shift.

While tuning (and for its previews) the shift is added by a forward hook on the embedding
layer, so gradients reach it and the model's weights are never written; rendering merges it
into the embedding rows (`OffsetMerger`), reversibly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn

from ostaf.errors import SettingsError
from ostaf.method.shift_keys import shift_key, split_shift_key

Shifts = Mapping[str, torch.Tensor]  # "<encoder>.<token id>" -> (D,)


def embedding_layers(pipe: object, encoders: tuple[str, ...]) -> dict[str, nn.Embedding]:
    """The token embedding layer of each named text encoder of `pipe`."""
    layers = {}
    for name in encoders:
        layer = getattr(pipe, name).get_input_embeddings()
        if not isinstance(layer, nn.Embedding):
            raise TypeError(f"{name}'s input embedding is a {type(layer).__name__}")
        layers[name] = layer
    return layers


def placeholder_ids(
    pipe: object, encoders: tuple[str, ...], tokenizers: tuple[str, ...], token: str
) -> dict[str, list[int]]:
    """The token ids `token` is written with, per text encoder (in order, without repeats)."""
    found = {}
    for encoder, tokenizer in zip(encoders, tokenizers, strict=True):
        ids = getattr(pipe, tokenizer)(token, add_special_tokens=False).input_ids
        found[encoder] = list(dict.fromkeys(int(i) for i in ids))
    return found


class PlaceholderShift(nn.Module):
    """The learnable shifts of the placeholder's token embeddings, starting at zero (the
    placeholder's own meaning)."""

    def __init__(self, ids: Mapping[str, list[int]], widths: Mapping[str, int]) -> None:
        super().__init__()
        self.keys = [shift_key(encoder, i) for encoder, found in ids.items() for i in found]
        # ParameterDict names cannot hold dots.
        self.shifts = nn.ParameterDict(
            {
                key.replace(".", ":"): nn.Parameter(torch.zeros(widths[key.rpartition(".")[0]]))
                for key in self.keys
            }
        )

    def forward(self) -> dict[str, torch.Tensor]:
        return {key: self.shifts[key.replace(".", ":")] for key in self.keys}


@contextlib.contextmanager
def shifted_embeddings(
    layers: Mapping[str, nn.Embedding], shifts: Shifts, scale: float = 1.0
) -> Iterator[None]:
    """Add `scale` · shift to the embedding of each shifted token id while the context is
    open (gradients flow into the shifts)."""
    rows: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, vector in shifts.items():
        encoder, token_id = split_shift_key(key)
        rows.setdefault(encoder, []).append((token_id, vector))
    handles = []

    def hook_for(found: list[tuple[int, torch.Tensor]]) -> Callable[..., torch.Tensor]:
        def add_shifts(_module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            ids = args[0]
            for token_id, vector in found:
                where = (ids == token_id).unsqueeze(-1).to(output.dtype)  # (B, T, 1)
                output = output + where * (vector.to(output.dtype) * scale)
            return output

        return add_shifts

    try:
        for encoder, found in rows.items():
            handles.append(layers[encoder].register_forward_hook(hook_for(found)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def word_token_ids(
    pipe: object, encoders: tuple[str, ...], tokenizers: tuple[str, ...], word: str
) -> dict[str, int]:
    """The one token id `word` is written with in each text encoder; SettingsError when any
    tokenizer writes it with more than one token (shifts are kept per token id, and the
    pieces of a longer word are shared with other words)."""
    found = {}
    for encoder, tokenizer in zip(encoders, tokenizers, strict=True):
        ids = getattr(pipe, tokenizer)(word, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise SettingsError(
                f"'{word}' is {len(ids)} tokens for this model's {tokenizer}; a placeholder "
                "word must be one token: choose another (e.g. one the library suggests)"
            )
        found[encoder] = int(ids[0])
    return found
