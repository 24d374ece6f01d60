"""Attribute kinds, the U-Net regions and timesteps they tune, as data (DESIGN §2).

Shape lives in the encoder (down path) and the mid block; appearance and style in the
decoder (up path). A region is a filter over module paths, so benchmarks and advanced users
can change it without new code paths. Shape samples only the noisier half of the timesteps,
where a picture's layout is decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum

PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
ATTENTIONS = ("attn1", "attn2")
BLOCKS = ("down_blocks", "mid_block", "up_blocks")


class AttributeKind(StrEnum):
    APPEARANCE = "appearance"
    SHAPE = "shape"
    STYLE = "style"

    @property
    def summary(self) -> str:
        return KIND_SUMMARY[self]


KIND_SUMMARY = {
    AttributeKind.APPEARANCE: "colour, material and surface texture of the subject, on any shape",
    AttributeKind.SHAPE: "outline and pose of the subject, with any colour or material",
    AttributeKind.STYLE: "the way the picture is drawn: strokes, shading, palette",
}

# Prompt templates used while tuning. {token} is the placeholder word, {cls} the optional
# class word given by the user ("cat", "vase"); an empty class word collapses cleanly.
TEMPLATES = {
    AttributeKind.APPEARANCE: "a photo of a {token} {cls}",
    AttributeKind.SHAPE: "a photo of a {token} {cls}",
    AttributeKind.STYLE: "a painting of a {cls} in {token} style",
}
# One token of the vocabulary with no trained meaning. The demo model draws "sks" in the shape
# slot as a heart, but a placeholder it has never seen ("zqx", three byte tokens) costs the
# untuned model most of its prompt fidelity (BENCHMARKS.md): lift is measured per reference.
# The word of attribute files from before each attribute got its own (ostaf.method.words),
# of the command line's tune, and of the attribute benchmark.
DEFAULT_TOKEN = "sks"
DEFAULT_CLASS_WORD = {
    AttributeKind.APPEARANCE: "object",
    AttributeKind.SHAPE: "object",
    AttributeKind.STYLE: "picture",
}


def tuning_prompt(kind: AttributeKind, token: str, class_word: str = "", caption: str = "") -> str:
    """The prompt the reference image is tuned against: the user's description of the
    reference (`caption`, with `{token}` or the token itself where the attribute's words
    would be) when given, else the kind's template."""
    if caption.strip():
        return " ".join(caption.replace("{token}", token).split())
    cls = class_word.strip() or DEFAULT_CLASS_WORD[kind]
    return " ".join(TEMPLATES[kind].format(token=token, cls=cls).split())


def prior_prompt(kind: AttributeKind, prompt: str, token: str, class_word: str = "") -> str:
    """The tuning prompt without the attribute: what prior preservation keeps as the base
    model draws it. For shape the placeholder becomes the class word (or "shape"); for
    appearance it goes; for style "{token} style" goes as a whole, e.g.
    "a red star, sks style, on a white background" -> "a red star, on a white background"."""
    word = re.escape(token)
    if kind is AttributeKind.STYLE:
        prompt = re.sub(rf"(?:\bin\s+)?(?<![\w-]){word}\s+style(?![\w-])", "", prompt)
    stand_in = (class_word.strip() or "shape") if kind is AttributeKind.SHAPE else ""
    prompt = re.sub(rf"(?<![\w-]){word}(?![\w-])", stand_in, prompt)
    prompt = re.sub(r"\s*,\s*(?:,\s*)+", ", ", prompt)  # ", ," left by a removed phrase
    prompt = re.sub(r"\s+,", ",", " ".join(prompt.split()))
    return prompt.strip(" ,")


def suggested_caption(kind: AttributeKind, class_word: str = "") -> str:
    """A description to start from, with `{token}` where the attribute goes: the user adds
    what the reference shows apart from the attribute (colour, background, style…), so the
    tuning does not learn those into the attribute."""
    return tuning_prompt(kind, "{token}", class_word)


def caption_names_token(caption: str, token: str) -> bool:
    """Whether `caption` holds the placeholder (as `{token}` or as the word itself)."""
    text = caption.replace("{token}", token)
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


@dataclass(frozen=True)
class Region:
    """Which attention projections of which U-Net blocks are tuned."""

    blocks: tuple[str, ...]
    attentions: tuple[str, ...] = ATTENTIONS
    projections: tuple[str, ...] = PROJECTIONS

    def __post_init__(self) -> None:
        _check_subset("blocks", self.blocks, BLOCKS)
        _check_subset("attentions", self.attentions, ATTENTIONS)
        _check_subset("projections", self.projections, PROJECTIONS)

    def matches(self, module_path: str) -> bool:
        """True when `module_path` is a target projection inside this region."""
        return self._pattern().fullmatch(module_path) is not None

    def _pattern(self) -> re.Pattern[str]:
        blocks = "|".join(b + (r"\.\d+" if b != "mid_block" else "") for b in self.blocks)
        attentions = "|".join(self.attentions)
        projections = "|".join(re.escape(p) for p in self.projections)
        return re.compile(
            rf"(?:{blocks})\.attentions\.\d+\.transformer_blocks\.\d+"
            rf"\.(?:{attentions})\.(?:{projections})"
        )

    def select(self, module_paths: Iterable[str]) -> list[str]:
        """The target module paths among `module_paths`, in a stable order."""
        return sorted(p for p in module_paths if self.matches(p))

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Region:
        return cls(
            blocks=tuple(data["blocks"]),
            attentions=tuple(data.get("attentions", ATTENTIONS)),
            projections=tuple(data.get("projections", PROJECTIONS)),
        )


def _check_subset(what: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"region {what} must be a non-empty subset of {allowed}, got {values}")


# The attribute benchmark (BENCHMARKS.md) decides these: shape with the encoder alone barely
# changed the picture; with the mid block it transfers.
REGION_BY_KIND = {
    AttributeKind.SHAPE: Region(blocks=("down_blocks", "mid_block")),
    AttributeKind.APPEARANCE: Region(blocks=("up_blocks",)),
    AttributeKind.STYLE: Region(blocks=("up_blocks",)),
}


# Horizontal flips augment appearance and style; for shape they would teach a mirrored pose.
FLIP_ALLOWED = {
    AttributeKind.SHAPE: False,
    AttributeKind.APPEARANCE: True,
    AttributeKind.STYLE: True,
}

# Which share [low, high) of the training timesteps each kind samples while tuning (0.5 to
# 1 of 1000 steps: t in [500, 1000)). Shape is decided in the noisy half; appearance and
# style need the detail end too.
TIMESTEPS_BY_KIND: dict[AttributeKind, tuple[float, float]] = {
    AttributeKind.SHAPE: (0.5, 1.0),
    AttributeKind.APPEARANCE: (0.0, 1.0),
    AttributeKind.STYLE: (0.0, 1.0),
}


def timestep_window(share: tuple[float, float], total: int) -> tuple[int, int]:
    """The integer timesteps [low, high) of `share` among `total` (at least one)."""
    low = min(round(share[0] * total), total - 1)
    return low, max(round(share[1] * total), low + 1)
