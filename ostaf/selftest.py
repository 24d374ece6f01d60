"""A headless end-to-end check of an installation: load the demo model, tune a few steps,
render one image, verify the result. Used by `main.py --self-test` and the built bundle."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ostaf.errors import OstafError


@dataclass
class SelfTestReport:
    ok: bool
    summary: str
    checks: list[str] = field(default_factory=list)


def run_self_test(steps: int = 4) -> SelfTestReport:
    """Run every stage and name the first that fails; never raises for a failed stage."""
    checks: list[str] = []
    start = time.perf_counter()
    stage = "importing torch and diffusers"
    try:
        import numpy as np
        import torch

        from ostaf.attribute_file import load_attribute
        from ostaf.demo_data import demo_reference
        from ostaf.pngmeta import read_png_metadata
        from ostaf.regions import AttributeKind
        from ostaf.requests import (
            AppliedAttribute,
            ModelChoice,
            RenderJob,
            RenderSettings,
            TuneJob,
            TuningSettings,
        )
        from ostaf.service import OstafService

        checks.append(f"torch {torch.__version__}")
        with tempfile.TemporaryDirectory(prefix="ostaf-self-test-") as folder:
            work = Path(folder)
            service = OstafService()
            stage = "loading the demo model"
            model = service.model(ModelChoice(source="demo"))
            checks.append(f"model {model.name} on {model.placement.label}")
            stage = "tuning"
            reference = demo_reference(work / "reference.png")
            settings = TuningSettings(kind=AttributeKind.APPEARANCE, steps=steps)
            tuned = service.tune(TuneJob(reference, settings, work / "a.safetensors", "self-test"))
            if len(tuned.result.losses) != steps or not np.isfinite(tuned.result.losses).all():
                raise OstafError(f"tuning gave losses {tuned.result.losses}")
            load_attribute(tuned.path)
            checks.append(f"tuned {steps} steps, loss {tuned.result.losses[-1]:.4f}")
            stage = "rendering"
            render = RenderSettings(
                prompt="a photo of a sks object",
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
