"""A headless end-to-end check of an installation: read the shipped resources, load the demo
model, tune a few steps, render one image, verify the result. Used by `main.py --self-test`
and the built bundle.

It runs in a private, temporary OSTAF_HOME: the user's settings (a chosen model or device)
cannot change what it checks, and nothing it writes (a demo model built on first use, the
attribute, the image) lands in the user's projects or cache. The cost is building the demo
model afresh each time where it is not shipped ready-made, a few seconds on a CPU.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ostaf.errors import OstafError

CHECK_PROMPT = "a photo of a sks object"


@dataclass
class SelfTestReport:
    ok: bool
    summary: str
    checks: list[str] = field(default_factory=list)


@contextmanager
def private_home(folder: Path) -> Iterator[None]:
    """Point OSTAF_HOME at `folder` for the duration, then restore what was there."""
    previous = os.environ.get("OSTAF_HOME")
    os.environ["OSTAF_HOME"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OSTAF_HOME", None)
        else:
            os.environ["OSTAF_HOME"] = previous


def run_self_test(steps: int = 4) -> SelfTestReport:
    """Run every stage and name the first that fails; never raises for a failed stage."""
    checks: list[str] = []
    start = time.perf_counter()
    stage = "importing torch and diffusers"
    try:
        import numpy as np
        import torch

        from ostaf.interop.pngmeta import read_png_metadata
        from ostaf.library.attribute_file import load_attribute
        from ostaf.method.regions import AttributeKind
        from ostaf.requests import (
            AppliedAttribute,
            ModelChoice,
            RenderJob,
            RenderSettings,
            TuneJob,
            TuningSettings,
        )
        from ostaf.service import OstafService
        from ostaf.world.demo_reference import demo_reference

        checks.append(f"torch {torch.__version__}")
        stage = "reading the shipped resources"
        checks.append(check_resources())
        with tempfile.TemporaryDirectory(prefix="ostaf-self-test-") as folder:
            work = Path(folder)
            with private_home(work / "home"):
                service = OstafService()
                stage = "loading the demo model"
                model = service.model(ModelChoice(source="demo"))
                checks.append(f"model {model.name} on {model.placement.label}")
                stage = "tuning"
                reference = demo_reference(work / "reference.png")
                settings = TuningSettings(kind=AttributeKind.APPEARANCE, steps=steps)
                job = TuneJob(reference, settings, work / "a.safetensors", "self-test")
                tuned = service.tune(job)
                if len(tuned.result.losses) != steps or not np.isfinite(tuned.result.losses).all():
                    raise OstafError(f"tuning gave losses {tuned.result.losses}")
                load_attribute(tuned.path)
                checks.append(f"tuned {steps} steps, loss {tuned.result.losses[-1]:.4f}")
                stage = "rendering"
                render = RenderSettings(
                    prompt=CHECK_PROMPT,
                    seeds=[1],
                    steps=4,
                    attributes=[AppliedAttribute(tuned.path, 1.0)],
                )
                outcome = service.render(RenderJob(render, work / "out"))
                image = np.asarray(outcome.images[0].image)
                if (
                    image.shape != (model.resolution, model.resolution, 3)
                    or not np.isfinite(image).all()
                ):
                    raise OstafError(f"rendered image has shape {image.shape}")
                parameters, record = read_png_metadata(outcome.paths[0])
                if parameters is None or record is None or record["seed"] != 1:
                    raise OstafError("the rendered PNG lacks its metadata")
                checks.append(f"rendered {image.shape[1]}x{image.shape[0]} with metadata")
    except Exception as exc:  # the self-test reports any failure as data
        return SelfTestReport(False, f"self-test FAILED while {stage}: {exc}", checks)
    seconds = time.perf_counter() - start
    return SelfTestReport(
        True, f"self-test passed in {seconds:.1f} s: " + "; ".join(checks), checks
    )


def check_resources() -> str:
    """The files that single-file checkpoints and the window need are where the app looks
    (a bundle or a wheel that forgot them would otherwise fail only on a user's machine)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTokenizer

    from ostaf import paths
    from ostaf.models.families import FAMILIES
    from ostaf.models.single_file import shared_tokenizer_dir

    icon = paths.resource("icons", "app.svg")
    if not icon.is_file():
        raise OstafError(f"{icon} is missing")
    for family in FAMILIES:
        UNet2DConditionModel.load_config(family.config_dir(), subfolder="unet")
    tokenizer = CLIPTokenizer.from_pretrained(shared_tokenizer_dir(), local_files_only=True)
    if len(tokenizer(CHECK_PROMPT).input_ids) < 3:
        raise OstafError(f"the CLIP tokenizer in {shared_tokenizer_dir()} does not tokenize")
    return f"resources in {paths.RESOURCES}"
