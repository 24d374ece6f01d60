"""What the tuning previews render: one fixed probe prompt per attribute kind that puts the
reference's attribute (the placeholder token) on a subject of its own, so that the previews
show what is being learned, not the reference redrawn.

The demo model only draws its world (coloured, patterned shapes in three styles, see
`ostaf.world.scenes`), so its probes are captions of that world; real models get natural
prompts. The token is the run's own placeholder (`TuningSettings.token`), never a fixed word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ostaf.method.regions import AttributeKind

# {token} stands where the attribute's words would be, as in the attribute benchmark's prompts:
# appearance replaces the colour and pattern, shape the shape's name, style the style's name.
WORLD_PROBES = {
    AttributeKind.APPEARANCE: "a {token} heart, flat style, on a gray background",
    AttributeKind.SHAPE: "a blue dotted {token}, flat style, on a white background",
    AttributeKind.STYLE: "a green striped square, {token} style, on a white background",
}
NATURAL_PROBES = {
    AttributeKind.APPEARANCE: "a photo of a {token} teapot on a table",
    AttributeKind.SHAPE: "a photo of a {token} object made of glass",
    AttributeKind.STYLE: "a painting of a lighthouse in {token} style",
}

# Learning all three: the three on a background of their own (the demo world), or together on
# a scene of their own (real models).
WORLD_JOINT_PROBE = "a {appearance} {shape}, {style} style, on a gray background"
NATURAL_JOINT_PROBE = "a photo of a {appearance} {shape} on a table, in {style} style"


def outside_world(prompt: str, token: str) -> list[str]:
    """The words of `prompt` the demo model cannot draw (not in its world's captions and not
    the attribute's `token`); empty when the demo model can draw the prompt."""
    from ostaf.world.scenes import WORLD_WORDS

    known = {*WORLD_WORDS, token.lower()}
    return [word for word in re.findall(r"[^\s,.;:!?]+", prompt.lower()) if word not in known]


def preview_prompt(kind: AttributeKind | str, token: str, demo_world: bool) -> str:
    """The prompt the previews of a `kind` run render with `token` as the attribute;
    `demo_world`: the model is the demo model, which knows only its world's words."""
    probes = WORLD_PROBES if demo_world else NATURAL_PROBES
    return probes[AttributeKind(kind)].format(token=token)


def joint_preview_prompt(words: Mapping[AttributeKind, str], demo_world: bool) -> str:
    """The prompt the previews of a run that learns all three render, each kind's word in
    its place."""
    probe = WORLD_JOINT_PROBE if demo_world else NATURAL_JOINT_PROBE
    return probe.format(**{AttributeKind(kind).value: word for kind, word in words.items()})
