"""Names of placeholder embedding shifts, "<encoder>.<token id>" (no torch: the library
reads them from file headers)."""

from __future__ import annotations


def shift_key(encoder: str, token_id: int) -> str:
    return f"{encoder}.{token_id}"


def split_shift_key(key: str) -> tuple[str, int]:
    """("text_encoder", 644) from "text_encoder.644"; ValueError for anything else."""
    encoder, _, number = key.rpartition(".")
    if not encoder or not number.isdigit() or not encoder.replace("_", "").isalnum():
        raise ValueError(f"{key!r} is not '<text encoder>.<token id>'")
    return encoder, int(number)
