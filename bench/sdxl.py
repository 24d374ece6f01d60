"""SDXL beside SD 1.5 (`python -m bench --sdxl`, a CPU run of a few minutes).

- Tuning steps of the exact SDXL 1.0 and SD 1.5 U-Nets (shipped configs, random weights) at a
  small size, per region: seconds and peak memory of OSTAF's step against a peft LoRA on the
  same layers (B) and on every attention projection (A), timed in the same process.
- The memory preflight's prediction for the sizes people tune at (SD 1.5 at 512 px, SDXL at
  1024 px) in bf16, with and without gradient checkpointing: the U-Net traced on the meta
  device, so no GPU or memory is needed.
"""

from __future__ import annotations

import gc

import torch

from bench.architectures import (
    LABELS,
    NATIVE_RESOLUTION,
    build_unet,
    family_of,
    meta_unet,
)
from bench.plans import Plan
from bench.report import Report, Row
from bench.tuning_speed import REGION_LABEL, _step_case
from ostaf.method.memory import GIB, plan_tuning_memory
from ostaf.models.single_file import model_config_dir

PREFLIGHT_ARCHS = ("sd15", "sdxl")
TIMESTEPS = 4  # the default per tuning step


def sdxl_rows(plan: Plan, report: Report) -> None:
    """Step rows for each case (one U-Net in memory at a time), then the predictions."""
    for case in plan.step_cases:
        with report.guard(f"{case.arch}@{case.resolution}"):
            _step_case(plan, case, report)
        build_unet.cache_clear()  # SDXL's U-Net alone is 10 GB in fp32
        gc.collect()
    for arch in PREFLIGHT_ARCHS:
        with report.guard(f"preflight {arch}"):
            _prediction_rows(plan, arch, report)


def _resident_bf16(arch: str) -> int:
    """Bytes of the weights on the card in bf16: U-Net and text encoders in bf16, VAE fp32."""
    import transformers
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig

    folder = model_config_dir(arch)
    total = sum(p.numel() for p in meta_unet(arch).parameters()) * 2
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        for name in family_of(arch).text_encoders:
            config = CLIPTextConfig.from_pretrained(folder / name)
            cls = getattr(transformers, (config.architectures or ["CLIPTextModel"])[0])
            encoder = cls(config)
            total += sum(p.numel() for p in encoder.parameters()) * 2
    return total + sum(p.numel() for p in vae.parameters()) * 4


def _prediction_rows(plan: Plan, arch: str, report: Report) -> None:
    unet = meta_unet(arch)
    resolution = NATIVE_RESOLUTION[arch]
    resident = _resident_bf16(arch)
    extra = family_of(arch).added_inputs(unet.config)
    for kind, label in REGION_LABEL.items():
        region = family_of(arch).region(kind)
        plans = {
            ckpt: plan_tuning_memory(
                unet.config,
                resolution,
                torch.bfloat16,
                region,
                TIMESTEPS,
                resident,
                None,
                checkpointing=ckpt,
                timesteps_per_pass=TIMESTEPS,
                added_inputs=extra,
            )
            for ckpt in (False, True)
        }
        without, with_ckpt = (plans[c].estimate.total for c in (False, True))
        report.add(
            Row(
                section="preflight",
                name=f"predicted peak, {label}, {TIMESTEPS} timesteps in one pass, "
                "gradient checkpointing",
                command=plan.command,
                device="prediction (meta-device trace; no device used)",
                precision="bf16",
                model=arch,
                resolution=resolution,
                steps=1,
                value=with_ckpt / GIB,
                unit="GiB",
                baseline="predicted peak without checkpointing",
                baseline_value=without / GIB,
                ratio=with_ckpt / without,
                notes=f"{LABELS[arch]}: weights {resident / GIB:.2f} GiB (U-Net and text "
                f"encoders bf16, VAE fp32); without: {plans[False].describe()}; with: "
                f"{plans[True].describe()}",
            )
        )
