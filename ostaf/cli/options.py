"""Command-line options shared by several commands: the model to load, the guidance, the
noise schedule and the reference's crop."""

from __future__ import annotations

import argparse

from ostaf.cli.numbers import number
from ostaf.errors import SettingsError
from ostaf.images import Box, mask_subject_crop
from ostaf.requests import SCHEDULES, ModelChoice, RenderSettings


def add_guidance_argument(parser: argparse.ArgumentParser) -> None:
    """--guidance, shared by render and batch: the model's own unless given."""
    parser.add_argument(
        "--guidance",
        type=number,
        default=RenderSettings.guidance,
        help="CFG scale, 0..50 (default: the model's own: 7.5 for SD 1.x and 2.x, 5 for SDXL "
        "and the demo models)",
    )


def add_schedule_argument(parser: argparse.ArgumentParser) -> None:
    """--schedule, shared by render and batch."""
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=RenderSettings.schedule,
        help="noise schedule of euler and dpmpp2m, named as A1111/Forge's Schedule type: "
        "karras (default; A1111's default for DPM++ 2M), simple (A1111 reproduces it step for "
        "step), model (the model's own scheduler config, used before this option existed); "
        "DDIM has none",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device and --precision, shared by the commands that load a model."""
    parser.add_argument(
        "--model", default=None, help="'demo', 'demo-xl' or a model path (default: Settings)"
    )
    parser.add_argument("--device", default=None, choices=["auto", "cuda", "mps", "cpu"])
    parser.add_argument("--precision", default=None, choices=["auto", "fp32", "fp16", "bf16"])


def model_choice(args: argparse.Namespace) -> ModelChoice:
    """The model the command loads: its options first, then Settings."""
    from ostaf.settings import load_settings

    settings = load_settings()
    return ModelChoice(
        source=args.model or settings.model_source,
        device=args.device or settings.device,
        precision=args.precision or settings.precision,
    )


def reference_crop(args: argparse.Namespace) -> Box | None:
    """The crop box of `tune --crop`: as given, or around the subject painted in --mask."""
    if args.crop != "mask":
        return args.crop
    if args.mask is None:
        raise SettingsError("--crop mask frames the subject painted in --mask: give --mask too")
    return mask_subject_crop(args.mask, args.image)
