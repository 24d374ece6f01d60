"""The world's caption words against the project's byte-level CLIP tokenizer."""

from __future__ import annotations

import os

import pytest

from ostaf.demo_model import demo_tokenizer_files
from ostaf.world import WORLD_WORDS


def _tokenizer():  # type: ignore[no-untyped-def]
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import CLIPTokenizer

    vocab, merges = demo_tokenizer_files(WORLD_WORDS)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def test_captions_tokenize_into_known_pieces() -> None:
    tokenizer = _tokenizer()
    text = "an orange checkered heart, sketchy style, on a cream background"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.unk_token_id not in ids
    # CLIP decodes every piece as a word, so punctuation comes back with a space before it.
    assert tokenizer.decode(ids).replace(" ,", ",") == text


@pytest.mark.xfail(
    strict=True,
    reason="demo_tokenizer_files adds each word's merges left to right, so an earlier word's "
    "merge ('r','e' from 'red') can win inside a later word ('green' -> g re e n); a word's "
    "merges should be added greedily from how the current table already splits it",
)
def test_every_world_word_is_one_token() -> None:
    tokenizer = _tokenizer()
    split = [word for word in WORLD_WORDS if len(tokenizer.tokenize(word)) != 1]
    assert split == []
