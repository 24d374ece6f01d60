"""Resource faults: out-of-memory is reported with advice and the model stays usable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ostaf.errors import OutOfMemoryError
from ostaf.images import load_reference
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import render
from ostaf.requests import RenderSettings, TuningSettings


class _OomOnce:
    """Replace a module's forward so that its next call raises a CUDA-style OOM."""

    def __init__(self, module: torch.nn.Module, error: BaseException) -> None:
        self.module, self.error = module, error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Remove the instance attribute (not assign the bound method back): later tests check
        # that nothing is left patched on the shared model's modules.
        del self.module.forward
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("MPS backend out of memory"),
    ],
)
def test_out_of_memory_while_tuning_is_reported_and_survived(
    model: BaseModel, reference_png: Path, error: BaseException
) -> None:
    state = {k: v.clone() for k, v in model.unet.state_dict().items()}
    reference = load_reference(reference_png, model.resolution)
    settings = TuningSettings(kind=AttributeKind.STYLE, steps=3)
    model.unet.forward = _OomOnce(model.unet, error)  # type: ignore[method-assign]
    with pytest.raises(OutOfMemoryError, match="while tuning; turn on memory saving"):
        tune(model, reference, settings)
    after = model.unet.state_dict()
    assert list(after) == list(state) and all(torch.equal(state[k], after[k]) for k in state)
    assert len(tune(model, reference, settings).losses) == 3  # still usable


def test_out_of_memory_while_rendering_is_reported_and_survived(model: BaseModel) -> None:
    settings = RenderSettings(prompt="a photo", seeds=[1], steps=3)
    expected = render(model, settings)[0].image.tobytes()
    model.unet.forward = _OomOnce(model.unet, torch.OutOfMemoryError("CUDA out of memory"))  # type: ignore[method-assign]
    with pytest.raises(OutOfMemoryError, match="while rendering; render smaller images"):
        render(model, settings)
    assert render(model, settings)[0].image.tobytes() == expected


def test_other_runtime_errors_are_not_disguised(model: BaseModel) -> None:
    model.unet.forward = _OomOnce(model.unet, RuntimeError("shape mismatch"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="shape mismatch"):
        render(model, RenderSettings(prompt="a photo", seeds=[1], steps=2))
