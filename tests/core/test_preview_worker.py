"""Background tuning previews: the same image as an inline preview, the loop goes on while
one renders, errors and cancelling reach the loop, and nothing is left running."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ostaf.errors import Cancelled
from ostaf.images import Reference, load_reference
from ostaf.method.preview_worker import PreviewWorker, shadow_unet
from ostaf.method.speed import SpeedOptions
from ostaf.method.tuning import TuningResult, tune
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken, Progress
from ostaf.requests import TuningSettings

PLAIN = SpeedOptions.plain()
ASIDE = SpeedOptions(**{**vars(PLAIN), "background_previews": True})


@pytest.fixture
def reference(model: BaseModel, reference_png: Path) -> Reference:
    return load_reference(reference_png, model.resolution)


def _run(
    model: BaseModel,
    reference: Reference,
    speed: SpeedOptions,
    steps: int,
    on_report: Any = None,
    cancel: CancelToken | None = None,
) -> tuple[TuningResult, list[Progress]]:
    reports: list[Progress] = []

    def progress(report: Progress) -> None:
        reports.append(report)
        if on_report is not None:
            on_report(report)

    settings = TuningSettings.for_kind(
        "appearance", steps=steps, seed=2, preview_every=2, preview_steps=2
    )
    result = tune(model, reference, settings, progress=progress, cancel=cancel, speed=speed)
    return result, reports


def _previews(reports: list[Progress]) -> list[tuple[int, np.ndarray]]:
    return [(r.step, np.asarray(r.preview)) for r in reports if r.preview is not None]


def _no_preview_thread() -> bool:
    return not any(t.name == "ostaf-preview" for t in threading.enumerate())


def test_the_copy_shares_every_weight(model: BaseModel) -> None:
    copy = shadow_unet(model.unet)
    pairs = list(zip(model.unet.parameters(), copy.parameters(), strict=True))
    assert pairs and all(p is q for p, q in pairs)
    assert copy is not model.unet and copy.conv_in is not model.unet.conv_in


def test_the_worker_tokenizes_with_a_tokenizer_of_its_own(model: BaseModel) -> None:
    """A fast tokenizer keeps its padding on its Rust object between calls: shared with the
    loop's thread, the loop's calls raced the worker's unconditional prompt (a 2-token
    encoding beside a 77-token one, and the preview failed)."""
    paths = [n for n, _ in model.unet.named_modules() if n.endswith("attn2.to_k")][:1]
    settings = TuningSettings.for_kind("appearance", preview_every=2, preview_steps=2)
    worker = PreviewWorker(model, paths, "a sks star", settings, 64, CancelToken())
    try:
        mine, theirs = worker._pipe.tokenizer, model.pipe.tokenizer
        assert mine is not theirs and mine.backend_tokenizer is not theirs.backend_tokenizer
        for text in ("", "a red striped star, outline style"):
            padded = {"padding": "max_length", "max_length": 77}
            assert mine(text, **padded).input_ids == theirs(text, **padded).input_ids
    finally:
        worker.close()


def test_background_previews_show_what_inline_ones_show(
    model: BaseModel, reference: Reference
) -> None:
    inline, inline_reports = _run(model, reference, PLAIN, steps=4)
    aside, aside_reports = _run(model, reference, ASIDE, steps=4)
    assert aside.losses == inline.losses  # the loop itself is the same
    for path, (a, b) in aside.attribute.factors.items():
        assert torch.equal(a, inline.attribute.factors[path][0])
        assert torch.equal(b, inline.attribute.factors[path][1])
    expected, got = _previews(inline_reports), _previews(aside_reports)
    assert [step for step, _ in expected] == [2, 4]
    # The last preview always comes, with the last step, from the final factors.
    assert got[-1][0] == 4
    difference = np.abs(got[-1][1].astype(int) - expected[-1][1].astype(int))
    assert difference.max() <= 1
    assert _no_preview_thread()


def test_the_loop_goes_on_while_a_preview_renders(
    model: BaseModel, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_reached_step_4 = threading.Event()
    waited: list[bool] = []
    real_render = PreviewWorker.render

    def slow_render(self: PreviewWorker, *args: Any) -> Any:
        if not waited:  # the first preview (step 2) waits until the loop is two steps on
            waited.append(loop_reached_step_4.wait(timeout=120))
        return real_render(self, *args)

    def on_report(report: Progress) -> None:
        if report.stage == "tuning" and report.step >= 4:
            loop_reached_step_4.set()

    monkeypatch.setattr(PreviewWorker, "render", slow_render)
    result, reports = _run(model, reference, ASIDE, steps=6, on_report=on_report)
    # An inline preview at step 2 would have held the loop there until the timeout.
    assert waited == [True]
    assert len(result.losses) == 6
    assert _previews(reports)[-1][0] == 6
    assert _no_preview_thread()


def test_a_failing_preview_stops_the_run_with_its_error(
    model: BaseModel, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: PreviewWorker, *args: Any) -> Any:
        raise ValueError("the preview broke")

    monkeypatch.setattr(PreviewWorker, "render", broken)
    with pytest.raises(ValueError, match="the preview broke"):
        _run(model, reference, ASIDE, steps=4)
    assert _no_preview_thread()


def test_cancelling_stops_a_rendering_preview_and_the_loop(
    model: BaseModel, reference: Reference
) -> None:
    cancel = CancelToken()

    def on_report(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 2:
            cancel.cancel()  # the step-2 preview has just been submitted

    with pytest.raises(Cancelled):
        _run(model, reference, ASIDE, steps=6, on_report=on_report, cancel=cancel)
    assert _no_preview_thread()
    assert all("forward" not in vars(m) for m in model.unet.modules())


def test_previews_stay_inline_when_memory_has_no_room_beside_the_loop(
    model: BaseModel, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured, _ = _run(model, reference, PLAIN, steps=2)
    assert measured.memory is not None
    estimate = measured.memory.estimate
    # The step fits the budget, a second step's working memory beside it does not.
    budget_mb = (estimate.total + estimate.step // 2) // 2**20 + 1
    started: list[int] = []
    real_init = PreviewWorker.__init__

    def counting_init(self: PreviewWorker, *args: Any) -> None:
        started.append(1)
        real_init(self, *args)

    monkeypatch.setattr(PreviewWorker, "__init__", counting_init)
    settings = TuningSettings.for_kind(
        "appearance", steps=2, seed=2, preview_every=2, preview_steps=2, memory_budget_mb=budget_mb
    )
    reports: list[Progress] = []
    result = tune(model, reference, settings, progress=reports.append, speed=ASIDE)
    assert result.memory is not None and result.memory.fits
    assert started == []  # inline
    assert _previews(reports)[-1][0] == 2
    roomy = TuningSettings.for_kind(
        "appearance", steps=2, seed=2, preview_every=2, preview_steps=2, memory_budget_mb=10**6
    )
    tune(model, reference, roomy, speed=ASIDE)
    assert started == [1]
