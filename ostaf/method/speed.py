"""How fast the tuning loop runs: its speed options and the machinery behind each (issue 28).

Every optimisation here has a switch in `SpeedOptions`, and each gives the loss and factors
of the plain loop (`SpeedOptions.plain()`) within floating-point tolerance
(`tests/core/test_speed_options.py`). Defaults are on only where they are safe: the CPU path
runs as it did before these options existed, apart from `lean_attention` (the same
arithmetic, less Python per attention call).

- `fused_optimizer`: AdamW as one fused kernel where the device has one.
- `sync_interval_s`: the loss is read back to the host (a device sync) at most this often,
  not every step; the NaN check and progress follow when it arrives.
- `sdpa`: attention layers still on diffusers' classic processor use PyTorch's SDPA.
- `lean_attention`: diffusers' `Attention.forward` inspects its processor's signature on
  every call (~10–30 µs); the lean forward calls the processor directly when there are no
  extra arguments.
- `channels_last`: the U-Net's convolutions in NHWC layout (CUDA's tensor cores prefer it).
- `compile_unet` (opt-in): `torch.compile` of the U-Net's training forward, with a fallback
  to eager (and a one-line note) when compiling fails.
- `cuda_graphs` (opt-in, CUDA only): the U-Net's forward and backward of a training pass are
  captured once as CUDA graphs and replayed every step (the shapes are fixed).
- `background_previews`: tuning previews render in a thread of their own while the loop goes
  on (`ostaf.method.preview_worker`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ostaf.errors import OstafError, SettingsError
from ostaf.method.offsets import OffsetLinear

ENVIRONMENT = "OSTAF_SPEED"  # e.g. "compile_unet=1,channels_last=0"
GPU_SYNC_INTERVAL_S = 0.25  # a sync drains the queue: a few a second cost nothing visible
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class SpeedOptions:
    """Switches of the tuning loop's optimisations; None means "the device decides"."""

    fused_optimizer: bool = True
    sync_interval_s: float | None = None  # None: every step on the CPU, 0.25 s elsewhere
    sdpa: bool = True
    lean_attention: bool = True
    channels_last: bool | None = None  # None: on CUDA only
    compile_unet: bool = False
    compile_backend: str = "inductor"
    compile_mode: str = "default"
    cuda_graphs: bool = False
    background_previews: bool | None = None  # None: on CUDA only

    @classmethod
    def plain(cls) -> SpeedOptions:
        """Every optimisation off: the reference loop the optimised ones are checked against."""
        return cls(
            fused_optimizer=False,
            sync_interval_s=0.0,
            sdpa=False,
            lean_attention=False,
            channels_last=False,
            background_previews=False,
        )

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value."""
        interval = self.sync_interval_s
        if interval is not None and (not math.isfinite(interval) or interval < 0):
            raise SettingsError(f"sync interval {interval!r} s must be 0 or more")
        if self.compile_mode not in COMPILE_MODES:
            raise SettingsError(
                f"compile mode {self.compile_mode!r} is not one of {', '.join(COMPILE_MODES)}"
            )
        if not self.compile_backend:
            raise SettingsError("the compile backend is empty; use inductor")
        if self.compile_unet and self.cuda_graphs:
            raise SettingsError(
                "compile_unet and cuda_graphs both replace the U-Net's forward; choose one "
                "(compile_mode=reduce-overhead gives compiled code in CUDA graphs)"
            )

    def resolved(self, device: torch.device) -> SpeedOptions:
        """These options with every "device decides" filled in for `device`."""
        self.validate()
        cuda = device.type == "cuda"
        interval = self.sync_interval_s
        if interval is None:
            interval = 0.0 if device.type == "cpu" else GPU_SYNC_INTERVAL_S
        return dataclasses.replace(
            self,
            sync_interval_s=interval,
            channels_last=cuda if self.channels_last is None else self.channels_last,
            background_previews=(
                cuda if self.background_previews is None else self.background_previews
            ),
        )

    @classmethod
    def from_text(cls, text: str) -> SpeedOptions:
        """Options from "name=value,…" (the `OSTAF_SPEED` variable); unnamed ones default."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            name, _, raw = item.partition("=")
            name, raw = name.strip(), raw.strip()
            if name not in kinds:
                raise SettingsError(
                    f"{ENVIRONMENT}: unknown option {name!r}; known: {', '.join(kinds)}"
                )
            values[name] = _parse(name, raw, str(kinds[name]))
        options = cls(**values)
        options.validate()
        return options

    @classmethod
    def from_env(cls) -> SpeedOptions:
        """Options from the `OSTAF_SPEED` environment variable, else the defaults."""
        return cls.from_text(os.environ.get(ENVIRONMENT, ""))


def _parse(name: str, raw: str, kind: str) -> Any:
    lowered = raw.lower()
    if lowered in ("auto", "none", ""):
        if "None" not in kind:
            raise SettingsError(f"{ENVIRONMENT}: {name} needs a value")
        return None
    if "bool" in kind:
        if lowered in ("1", "true", "on", "yes"):
            return True
        if lowered in ("0", "false", "off", "no"):
            return False
        raise SettingsError(f"{ENVIRONMENT}: {name}={raw!r} must be 1 or 0")
    if "float" in kind:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{ENVIRONMENT}: {name}={raw!r} must be a number") from None
    return raw


class DeferredLosses:
    """Step losses kept on the device and read back together: at most every `interval_s`
    seconds (0: every step, as a plain loop does) or when a caller needs them now."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._last = time.perf_counter()
        self.reads = 0  # host-device syncs so far

    def add(self, step: int, loss: torch.Tensor, now: bool = False) -> list[tuple[int, float]]:
        """Keep `step`'s loss; returns the (step, loss) pairs read back by this call."""
        self._pending.append((step, loss.detach()))
        if now or self.interval_s == 0 or time.perf_counter() - self._last >= self.interval_s:
            return self.flush()
        return []

    def flush(self) -> list[tuple[int, float]]:
        """Read back every pending loss with one sync."""
        if not self._pending:
            return []
        steps = [step for step, _ in self._pending]
        if len(self._pending) == 1:
            values = [float(self._pending[0][1])]
        else:
            values = torch.stack([loss for _, loss in self._pending]).float().tolist()
        self._pending = []
        self._last = time.perf_counter()
        self.reads += 1
        return list(zip(steps, values, strict=True))


# -- attention ------------------------------------------------------------------------------


def _attention_modules(unet: nn.Module) -> list[Any]:
    from diffusers.models.attention_processor import Attention

    return [m for m in unet.modules() if isinstance(m, Attention)]


@contextlib.contextmanager
def sdpa_attention(unet: nn.Module) -> Iterator[int]:
    """Give every attention layer on diffusers' classic processor PyTorch's SDPA one for the
    context; yields how many were changed (0 when diffusers chose SDPA already)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    changed = [m for m in _attention_modules(unet) if type(m.processor) is AttnProcessor]
    originals = [m.processor for m in changed]
    for module in changed:
        module.set_processor(AttnProcessor2_0())
    try:
        yield len(changed)
    finally:
        for module, processor in zip(changed, originals, strict=True):
            module.set_processor(processor)


@contextlib.contextmanager
def lean_attention(unet: nn.Module) -> Iterator[int]:
    """Attention layers call their processor directly for the context (no signature check
    per call); calls with extra keyword arguments take diffusers' own path."""
    from diffusers.models.attention_processor import Attention

    patched = [
        m
        for m in _attention_modules(unet)
        if type(m).forward is Attention.forward and "forward" not in vars(m)
    ]
    for module in patched:
        module.forward = _lean_forward(module)
    try:
        yield len(patched)
    finally:
        for module in patched:
            del module.forward  # the class's forward again


def _lean_forward(module: Any) -> Callable[..., torch.Tensor]:
    original = type(module).forward

    def forward(
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if kwargs:
            return original(module, hidden_states, encoder_hidden_states, attention_mask, **kwargs)
        return module.processor(
            module,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
        )

    return forward


@contextlib.contextmanager
def channels_last(unet: nn.Module) -> Iterator[None]:
    """The U-Net's 4-D weights in channels-last layout for the context (same values; the
    Parameter objects are kept), contiguous again afterwards."""
    # Module.to takes memory_format (torch's stubs leave it out).
    unet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        yield
    finally:
        unet.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


# -- the U-Net's training forward: compiled or graphed ------------------------------------


class _TrainingForward:
    """The U-Net's forward while tuning: `fast` for the loop's own calls with gradients (the
    training passes), the eager forward for everything else (previews, the frozen prior
    prediction, other threads)."""

    def __init__(self, eager: Callable[..., Any], fast: Callable[..., Any]) -> None:
        self.eager = eager
        self.fast: Callable[..., Any] | None = fast
        self.thread = threading.get_ident()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fast = self.fast
        if fast is not None and torch.is_grad_enabled() and threading.get_ident() == self.thread:
            return fast(*args, **kwargs)
        return self.eager(*args, **kwargs)


class GraphedPasses:
    """The U-Net's forward and backward of a training pass as CUDA graphs.

    The graphs' inputs are the pass's noisy latents, timesteps, conditioning and every target
    layer's (λ/r·A, B) factors, so gradients leave the graph towards the hypernetwork (and a
    learned placeholder word). They are captured at the first pass and replayed when a pass
    has the same shapes; any other call runs eagerly."""

    KNOWN = ("encoder_hidden_states", "added_cond_kwargs")

    def __init__(self, eager: Callable[..., Any], wrappers: Mapping[str, OffsetLinear]) -> None:
        self.eager = eager
        self.wrappers = list(wrappers.values())
        self.graphed: Callable[..., Any] | None = None
        self.key: tuple[Any, ...] | None = None
        self.replays = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        terms = [w.terms for w in self.wrappers]
        if len(args) != 2 or set(kwargs) - set(self.KNOWN) or any(len(t) != 1 for t in terms):
            return self.eager(*args, **kwargs)
        added = kwargs.get("added_cond_kwargs") or {}
        names = sorted(added)
        inputs = (
            args[0],
            args[1],
            kwargs["encoder_hidden_states"],
            *(added[n] for n in names),
            *(x for t in terms for x in t[0]),
        )
        key = (tuple(names), *((x.shape, x.dtype, x.requires_grad) for x in inputs))
        if self.graphed is None:
            self.graphed = self._capture(names, inputs)
            self.key = key
        elif key != self.key:
            return self.eager(*args, **kwargs)
        self.replays += 1
        return UNet2DConditionOutput(sample=self.graphed(*inputs))

    def _capture(self, names: list[str], inputs: Sequence[torch.Tensor]) -> Callable[..., Any]:
        eager, wrappers = self.eager, self.wrappers
        before = [w.terms for w in wrappers]

        def one_pass(
            sample: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor, *rest: torch.Tensor
        ) -> torch.Tensor:
            added = dict(zip(names, rest[: len(names)], strict=True))
            factors = rest[len(names) :]
            for wrapper, a, b in zip(wrappers, factors[0::2], factors[1::2], strict=True):
                wrapper.terms = [(a, b)]
            out = eager(sample, timestep, encoder_hidden_states=text, added_cond_kwargs=added)
            return out.sample

        samples = tuple(x.detach().clone().requires_grad_(x.requires_grad) for x in inputs)
        try:
            return torch.cuda.make_graphed_callables(one_pass, samples)
        finally:
            for wrapper, terms in zip(wrappers, before, strict=True):
                wrapper.terms = terms


class Accelerator:
    """Runs tuning steps with the compiled or graphed U-Net when asked, falling back to the
    eager one (with a note) when that fails."""

    def __init__(self, unet: nn.Module, wrappers: Mapping[str, OffsetLinear]) -> None:
        self.unet = unet
        self.wrappers = wrappers
        self.notes: list[str] = []
        self.forward: _TrainingForward | None = None
        self.what = ""
        self.first_step_s: float | None = None  # the first fast step, compiling included

    @property
    def fast(self) -> bool:
        return self.forward is not None and self.forward.fast is not None

    def install(self, fast: Callable[..., Any], what: str) -> None:
        self.forward = _TrainingForward(self.unet.forward, fast)
        self.unet.forward = self.forward
        self.what = what

    def uninstall(self) -> None:
        if self.forward is not None and vars(self.unet).get("forward") is self.forward:
            del self.unet.forward
        self.forward = None

    def step(
        self,
        run: Callable[[], torch.Tensor],
        sampler: torch.Generator,
        parameters: Sequence[torch.Tensor],
    ) -> torch.Tensor:
        """One tuning step; a failing compiled or graphed step is run again eagerly from the
        same random state (so the run is the one the eager loop would give)."""
        if not self.fast:
            return run()
        state = sampler.get_state()
        start = time.perf_counter()
        try:
            loss = run()
        except (torch.OutOfMemoryError, OstafError):
            raise
        except Exception as exc:  # compile and capture errors are many and unlisted
            if "out of memory" in str(exc).lower():
                raise
            self._fall_back(exc)
            sampler.set_state(state)
            for parameter in parameters:
                parameter.grad = None
            return run()
        if self.first_step_s is None:
            self.first_step_s = time.perf_counter() - start
        return loss

    def report(self) -> list[str]:
        """Notes for the run's result: fallbacks, and the first fast step's time (compiling
        or capturing included)."""
        notes = list(self.notes)
        if self.fast and self.first_step_s is not None:
            notes.append(
                f"{self.what}: the first step took {self.first_step_s:.1f} s "
                "(compiling or capturing included, where it was not done before)"
            )
        return notes

    def _fall_back(self, exc: Exception) -> None:
        assert self.forward is not None
        self.forward.fast = None
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        self.notes.append(
            f"{self.what} failed ({type(exc).__name__}: {first}); tuning goes on without it"
        )


@contextlib.contextmanager
def accelerated(
    unet: nn.Module,
    wrappers: Mapping[str, OffsetLinear],
    options: SpeedOptions,
    device: torch.device,
) -> Iterator[Accelerator]:
    """Apply `options` (resolved for `device`) to the U-Net for the tuning loop; everything
    is undone on exit."""
    accelerator = Accelerator(unet, wrappers)
    with contextlib.ExitStack() as stack:
        if options.sdpa:
            stack.enter_context(sdpa_attention(unet))
        if options.lean_attention:
            stack.enter_context(lean_attention(unet))
        if options.channels_last:
            stack.enter_context(channels_last(unet))
        stack.callback(accelerator.uninstall)
        if options.compile_unet:
            mode = options.compile_mode if options.compile_backend == "inductor" else None
            compiled = torch.compile(unet.forward, backend=options.compile_backend, mode=mode)
            accelerator.install(compiled, f"torch.compile ({options.compile_backend})")
        elif options.cuda_graphs:
            if device.type == "cuda":
                accelerator.install(GraphedPasses(unet.forward, wrappers), "CUDA graphs")
            else:
                accelerator.notes.append(
                    f"CUDA graphs need a CUDA device; tuning on {device.type} runs without them"
                )
        yield accelerator
