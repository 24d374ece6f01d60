"""Giving an attribute another placeholder word without changing what it does.

A prompt's word W reaches the text encoders as its embedding row, plus the attribute's
learned shift of W (λ · shift_W). Moving the attribute to the word W' keeps, at λ = 1, the
very vector the encoders saw for W: the new shift is (embedding(W) + shift_W) − embedding(W'),
per text encoder (for an attribute that learned no shift, embedding(W) − embedding(W')). So
"a W' star" with the renamed attribute is conditioned exactly as "a W star" was; at λ = 0 W'
is the model's own word again. The embeddings are the loaded model's, so this runs where a
model is loaded (the service).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ostaf.errors import SettingsError
from ostaf.library.attribute_file import Attribute
from ostaf.library.attribute_meta import SHIFTS_VERSION, TuningRecord
from ostaf.method.placeholder import word_token_ids
from ostaf.method.shift_keys import shift_key
from ostaf.method.words import attribute_word, check_word, replace_word
from ostaf.models.base_model import BaseModel


@torch.no_grad()
def rebase_word(attribute: Attribute, model: BaseModel, word: str) -> Attribute:
    """`attribute` named by `word` instead of its own word, re-based on `model`'s
    embeddings (see the module docstring); both words must be one token of each of its
    tokenizers."""
    meta = attribute.meta
    old, new = attribute_word(meta), check_word(word)
    if new == old.lower():
        raise SettingsError(f"'{meta.name}' already uses the word '{new}'")
    family = model.family
    old_ids = word_token_ids(model.pipe, family.text_encoders, family.tokenizers, old)
    new_ids = word_token_ids(model.pipe, family.text_encoders, family.tokenizers, new)
    known = {shift_key(encoder, token_id) for encoder, token_id in old_ids.items()}
    if set(attribute.shifts) - known:
        raise SettingsError(
            f"'{meta.name}' learned its word '{old}' as other tokens than {model.name} writes "
            "it with; load the model it was tuned on to give it another word"
        )
    model.merger.restore()  # the model's own rows, without a render's shifts
    shifts: dict[str, torch.Tensor] = {}
    bases: dict[str, torch.Tensor] = {}
    for encoder in family.text_encoders:
        rows = model.merger.embeddings[encoder].weight
        old_key = shift_key(encoder, old_ids[encoder])
        seen = rows[old_ids[encoder]].detach().float().cpu()
        if old_key in attribute.shifts:
            seen = seen + attribute.shifts[old_key].float()
        key = shift_key(encoder, new_ids[encoder])
        bases[key] = rows[new_ids[encoder]].detach().float().cpu().clone()
        shifts[key] = seen - bases[key]
    tuning = TuningRecord(**meta.tuning)
    tuning["token"] = new
    if "prompt" in tuning:
        tuning["prompt"] = replace_word(tuning["prompt"], old, new)
    if "caption" in tuning:
        tuning["caption"] = replace_word(tuning["caption"], old, new)
    renamed = replace(
        meta,
        tuning=tuning,
        shifts=list(shifts),
        format_version=max(meta.format_version, SHIFTS_VERSION),
    )
    renamed.validate()
    return Attribute(renamed, attribute.factors, shifts, bases)
