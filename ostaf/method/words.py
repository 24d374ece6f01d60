"""Each attribute's own placeholder word (no torch here).

An attribute is named in prompts by a word of its own ("a ohwx teapot"), so that several
attributes applied together can each be put where it belongs ("a ohwx teapot in phol
style"). A new attribute gets the first candidate word no attribute of its project has;
candidates are data: single tokens of the model's tokenizer that mean little to the model.
Attributes tuned before words were chosen keep `sks` (DEFAULT_TOKEN). Two attributes applied
together (λ ≠ 0) must not share a word: their learned words would add up on one token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ostaf.errors import SettingsError, SharedWordError
from ostaf.library.attribute_meta import AttributeMeta
from ostaf.method.regions import DEFAULT_TOKEN

WORD_PATTERN = re.compile(r"[\w-]{1,32}")

# The demo model's tokenizer knows only its world's words, the tuning templates' words and
# "cat", "dog", "vase" as whole tokens, plus every single character; the world's captions
# never use "sks", "cat", "dog", "vase" or a lone letter other than "a", so their embeddings
# were never trained. Ordered by their untuned pull, the share of renders in which the oracle
# read something that neither the prompt nor the same prompt without the word gave
# (`python -m bench.word_pull`: 4 held-out references × 4 prompts per kind, 48 renders a
# word, bench/results/2026-12-07-cpu-word-pull.json), in %: cat 33, d 35, f 40, g 40, m 42,
# t 44, b 44, dog 44, h 46, q 48, p 50, w 52, y 52, e 54, vase 56, k 58, n 58, z 60, r 60,
# x 60, sks 62 (hearts in the shape slot: 100 %), j 62, v 67, c 67. A share of 48 renders is
# ±14 points (95 %): the first few stand apart from sks and the last, not from each other.
DEMO_CANDIDATES: tuple[str, ...] = (
    "cat",
    "d",
    "f",
    "g",
    "m",
    "t",
    "b",
    "dog",
    "h",
    "q",
    "p",
    "w",
    "y",
    "e",
    "vase",
    "k",
    "n",
    "z",
    "r",
    "x",
    "sks",
    "j",
    "v",
    "c",
)
# Rare words of CLIP's vocabulary (SD 1.x, 2.x and both SDXL encoders share it), each one token
# (tests/core/test_words.py checks them against the shipped tokenizers), late merges of the
# BPE table, so rare in CLIP's training text: "ohwx" is what DreamBooth users write for a
# word with little meaning; "sks" comes last, Stable Diffusion 1.5 draws it as a rifle; "zwx",
# also in use, is two tokens. After the first ten come the other weather tags of ohwx's kind
# (a US state's two letters and "wx"), so that a project of up to 25 attributes gives each its
# own word. Their pull on real models is not measured here (no weights).
CLIP_CANDIDATES: tuple[str, ...] = (
    "ohwx",
    "nmwx",
    "nlwx",
    "wawx",
    "wwx",
    "phol",
    "ylor",
    "yler",
    "aucus",
    "omile",
    "wiwx",
    "mowx",
    "miwx",
    "ilwx",
    "gawx",
    "mswx",
    "scwx",
    "kywx",
    "mnwx",
    "kswx",
    "ncwx",
    "inwx",
    "alwx",
    "flwx",
    "azwx",
    "sks",
)


def attribute_word(meta: AttributeMeta) -> str:
    """The word that names the attribute in prompts (files without one: `sks`)."""
    return str(meta.tuning.get("token") or DEFAULT_TOKEN)


def check_word(word: str) -> str:
    """A word as it is stored: stripped and lower-cased (CLIP lower-cases prompts); refuse
    anything but one word of letters, digits, '_' or '-'."""
    text = word.strip().lower()
    if not WORD_PATTERN.fullmatch(text):
        raise SettingsError(
            f"the word {word.strip()!r} must be one word of letters or digits, e.g. ohwx"
        )
    return text


def tuned_on_demo(meta: AttributeMeta) -> bool:
    """Whether the attribute was tuned on a demo model (their tokenizer is the world's)."""
    from ostaf.models.demo_model import embedded_models

    return meta.base_model.name in {model.name for model in embedded_models().values()}


def candidates(demo: bool) -> tuple[str, ...]:
    """The words new attributes get, in order, on the demo model or on a real one."""
    return DEMO_CANDIDATES if demo else CLIP_CANDIDATES


def choose_word(taken: Iterable[str], demo: bool) -> str:
    """The first candidate no attribute has; when every one is taken, the one fewest have."""
    counts: dict[str, int] = {}
    for word in taken:
        counts[word.lower()] = counts.get(word.lower(), 0) + 1
    found = candidates(demo)
    return min(found, key=lambda word: (counts.get(word, 0), found.index(word)))


def replace_word(text: str, old: str, new: str) -> str:
    """`text` with the whole word `old` (any case) written `new`."""
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text, flags=re.IGNORECASE)


def names_word(text: str, word: str) -> bool:
    """Whether `text` holds the whole word `word` (any case)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def shared_word(
    applied: Sequence[tuple[AttributeMeta, float]],
) -> tuple[AttributeMeta, AttributeMeta, str] | None:
    """The first two applied attributes (λ ≠ 0) with the same word, and the word."""
    seen: dict[str, AttributeMeta] = {}
    for meta, lam in applied:
        if not lam:
            continue
        word = attribute_word(meta).lower()
        if word in seen:
            return seen[word], meta, word
        seen[word] = meta
    return None


def shared_word_message(first: str, second: str, word: str) -> str:
    """The one line that refuses two attributes with one word."""
    return (
        f"'{first}' and '{second}' both use the word '{word}', so a prompt cannot say which "
        f"goes where; give '{second}' a word of its own (Library → Word…, or "
        "`python -m ostaf library word`)"
    )


def check_distinct_words(applied: Sequence[tuple[AttributeMeta, float]]) -> None:
    """Refuse (SharedWordError) two attributes applied together (λ ≠ 0) with one word."""
    found = shared_word(applied)
    if found is not None:
        first, second, word = found
        raise SharedWordError(
            shared_word_message(first.name, second.name, word), (first.name, second.name), word
        )
