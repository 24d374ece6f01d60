"""Peak dense throughput of the GPUs the project is benchmarked on, for model FLOPs
utilisation (MFU): achieved model FLOP/s over the card's peak.

Peaks are the vendors' dense (no sparsity) tensor-core figures for bf16/fp16 with fp32
accumulation. A card not listed gets no fraction rather than a guessed one.
"""

from __future__ import annotations

import torch

# (substring of torch.cuda.get_device_name, peak dense bf16/fp16 TFLOP/s); first match wins.
# None: a variant whose figure is not known here (it must not fall through to its sibling's).
PEAK_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", None),
    ("H100", 989.0),  # SXM (HBM3)
    ("H200", 989.0),
    ("A100", 312.0),
)


def peak_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """The card's peak dense TFLOP/s in `dtype` (bf16/fp16 only), None when unknown."""
    if dtype not in (torch.bfloat16, torch.float16):
        return None
    for pattern, peak in PEAK_TFLOPS:
        if pattern.lower() in device_name.lower():
            return peak
    return None
