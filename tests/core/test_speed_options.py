"""Each speed option of the tuning loop gives the plain loop's losses and factors (within
floating-point tolerance), is really in use while it is on, and is undone afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from ostaf.errors import SettingsError, TuningDivergedError
from ostaf.images import Reference, load_reference
from ostaf.method import tuning
from ostaf.method.speed import DeferredLosses, SpeedOptions, lean_attention
from ostaf.method.tuning import TuningResult, make_optimizer, tune
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.progress import Progress
from ostaf.requests import TuningSettings

STEPS = 4
PLAIN = SpeedOptions.plain()


@pytest.fixture
def reference(model: BaseModel, reference_png: Path) -> Reference:
    return load_reference(reference_png, model.resolution)


def _settings(**changes: Any) -> TuningSettings:
    # Appearance learns its word too (the default), so the text encoder is in the step.
    return TuningSettings.for_kind("appearance", steps=STEPS, seed=5, **changes)


def _tune(
    model: BaseModel,
    reference: Reference,
    speed: SpeedOptions,
    progress: Callable[[Progress], None] = lambda _: None,
    **changes: Any,
) -> TuningResult:
    return tune(model, reference, _settings(**changes), progress=progress, speed=speed)


def _assert_same_run(result: TuningResult, plain: TuningResult, rtol: float = 1e-4) -> None:
    assert len(result.losses) == len(plain.losses) == STEPS
    torch.testing.assert_close(
        torch.tensor(result.losses), torch.tensor(plain.losses), rtol=rtol, atol=1e-7
    )
    factors, expected = result.attribute.factors, plain.attribute.factors
    assert list(factors) == list(expected)
    for path, (a, b) in factors.items():
        assert torch.count_nonzero(a) > 0  # a run that learned something
        torch.testing.assert_close(a, expected[path][0], rtol=rtol, atol=1e-6 * a.abs().max())
        torch.testing.assert_close(b, expected[path][1], rtol=rtol, atol=1e-6 * b.abs().max())
    for key, shift in result.attribute.shifts.items():
        torch.testing.assert_close(shift, plain.attribute.shifts[key], rtol=rtol, atol=1e-7)


@pytest.fixture
def plain_run(model: BaseModel, reference: Reference) -> TuningResult:
    return _tune(model, reference, PLAIN)


def test_the_defaults_give_the_plain_run(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    _assert_same_run(_tune(model, reference, SpeedOptions()), plain_run)


def test_fused_adamw_gives_the_plain_run(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    _assert_same_run(_tune(model, reference, _with(fused_optimizer=True)), plain_run)
    parameter = torch.nn.Parameter(torch.zeros(3))
    assert make_optimizer([parameter], 1e-3).defaults["fused"] is True  # the CPU has it
    assert not make_optimizer([parameter], 1e-3, fused=False).defaults["fused"]


@contextmanager
def _unet_calls(model: BaseModel) -> Iterator[list[int]]:
    """A running count of the U-Net's forward calls."""
    calls = [0]

    def count(*_: object) -> None:
        calls[0] += 1

    handle = model.unet.register_forward_pre_hook(count)
    try:
        yield calls
    finally:
        handle.remove()


def test_deferred_loss_reading_gives_the_plain_run_and_reports_every_step(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    deferred = _with(sync_interval_s=1e9)  # read back only when needed: at the last step
    seen: list[tuple[int, float | None, int]] = []
    with _unet_calls(model) as count:
        result = _tune(
            model,
            reference,
            deferred,
            lambda p: seen.append((p.step, p.loss, count[0])) if p.stage == "tuning" else None,
        )
    _assert_same_run(result, plain_run)
    assert [(step, loss) for step, loss, _ in seen] == list(
        zip(range(1, STEPS + 1), plain_run.losses, strict=True)
    )
    # Every step's report came after the last step's U-Net pass: nothing was read earlier.
    assert {calls_then for *_, calls_then in seen} == {STEPS}


def test_a_non_finite_loss_names_its_step_when_read_late(
    model: BaseModel, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = tuning._step
    calls = [0]

    def poisoned(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls[0] += 1
        loss = real_step(*args, **kwargs)
        return loss * float("nan") if calls[0] == 2 else loss

    monkeypatch.setattr(tuning, "_step", poisoned)
    messages = []
    for speed in (PLAIN, _with(sync_interval_s=1e9)):
        calls[0] = 0
        with pytest.raises(TuningDivergedError) as caught:
            _tune(model, reference, speed)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "at step 2" in messages[0]


def test_deferred_losses_read_back_in_one_go() -> None:
    pending = DeferredLosses(interval_s=1e9)
    assert pending.add(1, torch.tensor(0.5)) == []
    assert pending.add(2, torch.tensor(0.25)) == []
    assert pending.add(3, torch.tensor(2.0), now=True) == [(1, 0.5), (2, 0.25), (3, 2.0)]
    assert pending.reads == 1
    assert DeferredLosses(0.0).add(7, torch.tensor(1.5)) == [(7, 1.5)]


def _with(**changes: Any) -> SpeedOptions:
    """The plain loop with only `changes` switched on."""
    return SpeedOptions(**{**vars(PLAIN), **changes})


def test_channels_last_gives_the_plain_run_and_is_undone(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    conv = model.unet.conv_in.weight
    layouts = []

    def look(report: Progress) -> None:
        if report.stage == "tuning":
            layouts.append(conv.is_contiguous(memory_format=torch.channels_last))

    result = _tune(model, reference, _with(channels_last=True), look)
    _assert_same_run(result, plain_run)
    assert layouts == [True] * STEPS
    assert conv.is_contiguous() and model.unet.conv_in.weight is conv


def _processors(model: BaseModel) -> set[type]:
    return {type(p) for p in model.unet.attn_processors.values()}


def test_sdpa_replaces_classic_attention_for_the_run(
    model: BaseModel, reference: Reference
) -> None:
    model.unet.set_attn_processor(AttnProcessor())
    try:
        plain = _tune(model, reference, PLAIN)
        during: list[set[type]] = []

        def look(report: Progress) -> None:
            if report.stage == "tuning":
                during.append(_processors(model))

        result = _tune(model, reference, _with(sdpa=True), look)
        _assert_same_run(result, plain)
        assert during == [{AttnProcessor2_0}] * STEPS
        assert _processors(model) == {AttnProcessor}  # the model's own choice, restored
    finally:
        model.unet.set_attn_processor(AttnProcessor2_0())


def test_lean_attention_gives_the_plain_run_without_inspecting_signatures(
    model: BaseModel,
    reference: Reference,
    plain_run: TuningResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inspect

    from diffusers.models import attention_processor

    inspected = [0]
    real_signature = inspect.signature

    def counting(target: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        if isinstance(getattr(target, "__self__", None), AttnProcessor2_0):
            inspected[0] += 1  # diffusers' per-call check of the processor's arguments
        return real_signature(target, *args, **kwargs)

    monkeypatch.setattr(attention_processor.inspect, "signature", counting)
    result = _tune(model, reference, _with(lean_attention=True))
    _assert_same_run(result, plain_run)
    assert inspected[0] == 0
    modules = [m for m in model.unet.modules() if isinstance(m, Attention)]
    assert modules and all("forward" not in vars(m) for m in modules)  # restored
    _tune(model, reference, PLAIN)
    assert inspected[0] > 0  # the plain loop goes through diffusers' check


def test_lean_attention_takes_diffusers_path_for_extra_arguments(model: BaseModel) -> None:
    attention = next(m for m in model.unet.modules() if isinstance(m, Attention))
    x = torch.randn(1, 4, attention.query_dim)
    with torch.no_grad(), lean_attention(model.unet) as patched:
        assert patched > 0
        lean = attention(x)
        # An argument the processor does not take: diffusers warns and drops it, as before.
        with_extra = attention(x, unknown_argument=1)
    torch.testing.assert_close(lean, attention(x), rtol=0, atol=0)
    torch.testing.assert_close(with_extra, lean, rtol=0, atol=0)


def _register(name: str, backend: Callable[..., Any]) -> None:
    from torch._dynamo import list_backends, register_backend

    if name not in list_backends(exclude_tags=()):
        register_backend(backend, name=name)


COMPILED: list[int] = []


def _counting_aot_eager(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    """aot_eager (AOT autograd, no code generation) that counts the graphs it compiles."""
    from torch._dynamo.backends.debugging import aot_eager

    COMPILED.append(len(gm.graph.nodes))
    return aot_eager(gm, example_inputs)


def _failing(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    raise RuntimeError("no compiler on this machine")


@pytest.mark.slow
def test_compiled_unet_gives_the_plain_run_without_recompiling(
    sdxl: BaseModel, reference_png: Path
) -> None:
    # The tiny SDXL model: the smallest U-Net here, so compiling takes seconds.
    torch._dynamo.reset()
    _register("ostaf_counting_aot_eager", _counting_aot_eager)
    reference = load_reference(reference_png, sdxl.resolution)
    plain = _tune(sdxl, reference, PLAIN)
    COMPILED.clear()
    graphs_after: list[int] = []
    speed = _with(compile_unet=True, compile_backend="ostaf_counting_aot_eager")
    result = _tune(
        sdxl, reference, speed, lambda p: graphs_after.append(len(COMPILED)) if p.step else None
    )
    _assert_same_run(result, plain, rtol=1e-3)
    assert COMPILED and graphs_after[0] == graphs_after[-1] == len(COMPILED)  # step 1 only
    assert any(
        "torch.compile (ostaf_counting_aot_eager): the first step" in n for n in result.notes
    )
    assert "forward" not in vars(sdxl.unet)  # the eager forward again
    torch._dynamo.reset()


def test_a_failing_compile_falls_back_to_eager_with_a_note(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    torch._dynamo.reset()
    _register("ostaf_failing_backend", _failing)
    speed = _with(compile_unet=True, compile_backend="ostaf_failing_backend")
    result = _tune(model, reference, speed)
    _assert_same_run(result, plain_run, rtol=1e-6)  # the same run: the sampler was rewound
    (note,) = result.notes
    assert note.startswith("torch.compile (ostaf_failing_backend) failed (")
    assert note.endswith("tuning goes on without it")
    torch._dynamo.reset()


def test_cuda_graphs_on_a_cpu_are_left_out_with_a_note(
    model: BaseModel, reference: Reference, plain_run: TuningResult
) -> None:
    result = _tune(model, reference, _with(cuda_graphs=True))
    _assert_same_run(result, plain_run, rtol=0)
    assert result.notes == ["CUDA graphs need a CUDA device; tuning on cpu runs without them"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_give_the_plain_run(
    reference_png: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = load_base_model("demo", device="cuda", precision="fp32")
    reference = load_reference(reference_png, gpu.resolution)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    plain = _tune(gpu, reference, PLAIN)
    result = _tune(gpu, reference, _with(cuda_graphs=True))
    _assert_same_run(result, plain, rtol=1e-3)
    assert any(n.startswith("CUDA graphs: the first step") for n in result.notes), result.notes


def test_speed_options_from_text() -> None:
    options = SpeedOptions.from_text("compile_unet=1, channels_last=off,sync_interval_s=0.5")
    assert options.compile_unet and options.channels_last is False
    assert options.sync_interval_s == 0.5
    assert SpeedOptions.from_text("channels_last=auto").channels_last is None
    assert SpeedOptions.from_text("") == SpeedOptions()
    with pytest.raises(SettingsError, match="unknown option 'fast'"):
        SpeedOptions.from_text("fast=1")
    with pytest.raises(SettingsError, match="must be 1 or 0"):
        SpeedOptions.from_text("cuda_graphs=maybe")
    with pytest.raises(SettingsError, match="choose one"):
        SpeedOptions.from_text("cuda_graphs=1,compile_unet=1")


def test_device_defaults() -> None:
    cpu = SpeedOptions().resolved(torch.device("cpu"))
    assert cpu.sync_interval_s == 0 and not cpu.channels_last and not cpu.background_previews
    cuda = SpeedOptions().resolved(torch.device("cuda"))
    assert cuda.sync_interval_s == 0.25 and cuda.channels_last and cuda.background_previews
    assert not cuda.compile_unet and not cuda.cuda_graphs  # opt-in everywhere
