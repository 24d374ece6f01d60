"""What the demo model can draw: prompts made only of its world's words."""

from __future__ import annotations

import re

from ostaf.world.scenes import WORLD_WORDS


def unknown_words(prompt: str, token: str = "") -> list[str]:
    """The words of `prompt` outside the demo world's vocabulary (and other than `token`)."""
    known = {*WORLD_WORDS, token} if token else set(WORLD_WORDS)
    return [word for word in re.findall(r"[^\s,.]+", prompt.lower()) if word not in known]
