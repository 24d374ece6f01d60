"""The world's caption words against the project's byte-level CLIP tokenizer."""

from __future__ import annotations

import os

from ostaf.models.demo_model import demo_tokenizer_files
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


def test_every_world_word_is_one_token() -> None:
    tokenizer = _tokenizer()
    split = [word for word in WORLD_WORDS if len(tokenizer.tokenize(word)) != 1]
    assert split == []


def test_demo_words_are_one_token_each() -> None:
    from transformers import CLIPTokenizer

    from ostaf.models.demo_model import DEMO_WORDS

    vocab, merges = demo_tokenizer_files(DEMO_WORDS)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    assert [w for w in DEMO_WORDS if len(tokenizer.tokenize(w)) != 1] == []
