"""Cases of the attribute benchmark: held-out references, prompts that ask for other
subjects, and how the oracle scores what came out (no torch here).

For a reference and an attribute kind, a prompt keeps the reference's attribute open (the
placeholder token stands where its words would be, or the words are left out) and asks for
other values of everything else. The oracle then reads:
- transfer: the output shows the reference's attribute (shape; colour and pattern; style);
- fidelity: the output shows what the prompt asked for everything else;
- leakage: the output shows the reference's value of an attribute the prompt asked otherwise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Literal

from ostaf.errors import SettingsError
from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind
from ostaf.world.oracle import Analysis, silhouette_iou
from ostaf.world.scenes import (
    COLOURS,
    PATTERNS,
    SHAPES,
    STYLES,
    Scene,
    allowed_backgrounds,
    caption,
    free_centre_range,
    sample_scene,
)

PromptForm = Literal["token", "omitted"]
PROMPT_FORMS: tuple[PromptForm, ...] = ("token", "omitted")
SUBJECT_ATTRIBUTES = ("shape", "colour", "pattern", "style")

# What each kind carries over from its reference.
TRANSFERRED: dict[AttributeKind, tuple[str, ...]] = {
    AttributeKind.SHAPE: ("shape",),
    AttributeKind.APPEARANCE: ("colour", "pattern"),
    AttributeKind.STYLE: ("style",),
}
_VALUES = {"shape": SHAPES, "colour": COLOURS, "pattern": PATTERNS, "style": STYLES}
_SEEDS = {AttributeKind.SHAPE: 101, AttributeKind.APPEARANCE: 202, AttributeKind.STYLE: 303}
# Reference sets. "bench": the references every default so far was chosen on. "unseen": drawn
# the same way from other seeds, which no choice has seen (where a headline is reported).
# "users": unseen too, and placed as people's own pictures are: small, off-centre and turned
# further than any training picture.
REFERENCE_SETS = {"bench": 0, "unseen": 10_000, "users": 20_000}  # name -> seed offset
USER_SIZES = (0.3, 0.42)  # below the training pictures' smallest (scenes.SIZE_RANGE)
USER_ROTATION = 40.0  # degrees either way; training pictures turn at most 25


def values_of(name: str) -> tuple[str, ...]:
    """Every value of one subject attribute ("shape", "colour", "pattern" or "style")."""
    return tuple(_VALUES[name])


def references(kind: AttributeKind, count: int, reference_set: str = "bench") -> list[Scene]:
    """`count` held-out reference scenes for `kind` from one of `REFERENCE_SETS`, balanced over
    the values of its attribute (five shapes for shape, eight colours and four patterns for
    appearance, three styles for style). The first `n` of a longer list are the `n`
    references."""
    if reference_set not in REFERENCE_SETS:
        raise SettingsError(
            f"reference set {reference_set!r} is unknown; choose {', '.join(REFERENCE_SETS)}"
        )
    rng = random.Random(_SEEDS[kind] + REFERENCE_SETS[reference_set])
    keys = TRANSFERRED[kind]
    orders = []
    for key in keys:
        values = list(_VALUES[key])
        rng.shuffle(values)
        orders.append(values)
    found = []
    for index in range(count):
        wanted = {key: order[index % len(order)] for key, order in zip(keys, orders, strict=True)}
        try:
            scene = sample_scene(rng, split="holdout", **wanted)
        except SettingsError:  # no held-out combination has both values: keep the first
            first = keys[0]
            scene = sample_scene(rng, split="holdout", **{first: wanted[first]})
        if reference_set == "users":
            scene = as_users_picture(scene, rng)
        found.append(scene)
    return found


def as_users_picture(scene: Scene, rng: random.Random) -> Scene:
    """`scene` as a user's own picture tends to be: the subject smaller, turned further and
    placed towards a corner (a random one), inside the canvas."""
    size = rng.uniform(*USER_SIZES)
    rotation = rng.uniform(-USER_ROTATION, USER_ROTATION)
    low, high = free_centre_range(scene.shape, size, rotation)
    corner = [rng.choice((rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0))) for _ in range(2)]
    centre = low + (high - low) * corner
    return replace(scene, size=size, rotation=rotation, centre=(float(centre[0]), float(centre[1])))


def reference_caption(reference: Scene, kind: AttributeKind, token: str = DEFAULT_TOKEN) -> str:
    """The reference's own description with the attribute's words replaced by `token`:
    what a user types in the Learn panel's description field, known exactly here."""
    return Case(reference, kind, reference, 0).prompt("token", token)


@dataclass(frozen=True)
class Case:
    """One prompt for one reference: what it asks and what a perfect transfer would show."""

    reference: Scene
    kind: AttributeKind
    expected: Scene  # the reference's transferred attributes, the prompt's everything else
    seed: int

    def prompt(self, form: PromptForm, token: str = DEFAULT_TOKEN) -> str:
        """The prompt: the world's caption of `expected` with the transferred attributes
        replaced by `token` ("token") or left out ("omitted")."""
        kept = caption(self.expected, omit=TRANSFERRED[self.kind])
        if form == "omitted":
            return kept
        words = caption(self.expected).split(" ")
        if self.kind is AttributeKind.SHAPE:
            # "a blue dotted shape, flat style, ..." -> "a blue dotted sks, flat style, ..."
            return kept.replace(" shape", f" {token}", 1)
        if self.kind is AttributeKind.APPEARANCE:
            # "an orange striped star, ..." -> "a sks star, ..."
            return " ".join(["a", token, *words[3:]])
        # "a green striped star, outline style, ..." -> "a green striped star, sks style, ..."
        return caption(self.expected).replace(
            f", {self.expected.style} style,", f", {token} style,", 1
        )


def cases(reference: Scene, kind: AttributeKind, count: int, seed: int) -> list[Case]:
    """`count` prompts for `reference`: every non-transferred attribute differs from the
    reference's, and the background differs too wherever the contrast rules allow."""
    rng = random.Random(seed)
    found = []
    for index in range(count):
        values = {}
        for name in SUBJECT_ATTRIBUTES:
            own = getattr(reference, name)
            if name in TRANSFERRED[kind]:
                values[name] = own
            else:
                values[name] = rng.choice([v for v in _VALUES[name] if v != own])
        backgrounds = allowed_backgrounds(values["colour"], values["pattern"], values["style"])
        others = [b for b in backgrounds if b != reference.background] or list(backgrounds)
        expected = replace(reference, background=rng.choice(others), **values)
        found.append(Case(reference, kind, expected, seed * 100 + index))
    return found


@dataclass(frozen=True)
class Score:
    """What the oracle read in one output, against its case."""

    transfer: float  # 1 when every transferred attribute shows the reference's value
    shape_iou: float  # silhouette IoU with the reference (shape/pose kept), for every kind
    fidelity: float  # 1 when every other asked attribute (and the background) shows
    joint: float  # 1 when both transfer and fidelity are 1: the picture the prompt wanted
    leakage: float  # share of the other subject attributes that show the reference's value


def score(case: Case, output: Analysis, reference: Analysis) -> Score:
    """Score one output image's analysis against `case` and its reference's analysis."""
    seen = output.attributes()
    moved = TRANSFERRED[case.kind]
    others = [name for name in SUBJECT_ATTRIBUTES if name not in moved]
    transfer = all(seen[name] == getattr(case.reference, name) for name in moved)
    fidelity = all(seen[name] == getattr(case.expected, name) for name in (*others, "background"))
    leaked = [seen[name] == getattr(case.reference, name) for name in others]
    return Score(
        transfer=float(transfer),
        shape_iou=silhouette_iou(output, reference),
        fidelity=float(fidelity),
        joint=float(transfer and fidelity),
        leakage=sum(leaked) / len(leaked),
    )
