"""Tuning previews rendered beside the loop instead of inside it
(`SpeedOptions.background_previews`).

A preview is a few sampling steps of the probe prompt with the current offsets: ~0.2 s of GPU
work at 512 px that an inline preview makes the loop wait for. Here it runs in a thread of
its own (on a CUDA stream of its own), from a snapshot of the factors and of the prompt's
encoding (which carries the learned placeholder word) taken when it was asked for, so the
loop goes on while it renders. It renders through a structural copy of the U-Net that shares
every weight (no memory) but has offset wrappers of its own: the loop's wrappers keep the
training factors meanwhile. Its activations do need memory beside the loop's, so previews go
beside the loop only when the memory preflight finds room (`room_beside`), else inline.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from diffusers import DDIMScheduler
from PIL import Image

from ostaf.method.memory import MemoryPlan
from ostaf.method.offsets import Factors, OffsetLinear, offset_layers, set_terms
from ostaf.models.base_model import BaseModel
from ostaf.models.devices import generator_for
from ostaf.progress import CancelToken
from ostaf.render.rendering import decode_latents
from ostaf.requests import TuningSettings

PREVIEW_GUIDANCE = 5.0  # as the inline preview (ostaf.method.tuning._preview)


def shadow_unet(unet: torch.nn.Module) -> torch.nn.Module:
    """A copy of `unet`'s module tree that shares every parameter and buffer with it."""
    shared = {id(t): t for t in (*unet.parameters(), *unet.buffers())}
    return copy.deepcopy(unet, memo=shared)


class PreviewWorker:
    """Renders one preview at a time in a background thread; the loop submits and takes."""

    def __init__(
        self,
        model: BaseModel,
        paths: Sequence[str],
        prompt: str,
        settings: TuningSettings,
        size: int,
        cancel: CancelToken,
    ) -> None:
        self.model, self.prompt, self.settings = model, prompt, settings
        self.size, self.cancel = size, cancel
        self.device = model.placement.device
        self._stack = contextlib.ExitStack()
        unet = shadow_unet(model.unet)
        self._wrappers: dict[str, OffsetLinear] = self._stack.enter_context(
            offset_layers(unet, paths)
        )
        components = dict(model.pipe.components)
        components["unet"] = unet
        # A fast tokenizer sets its padding and truncation on its Rust object at every call:
        # shared with the loop's thread, a call there can leave this thread's unconditional
        # prompt unpadded (2 tokens instead of 77). The copies are small.
        for name in ("tokenizer", "tokenizer_2"):
            if components.get(name) is not None:
                components[name] = copy.deepcopy(components[name])
        components["scheduler"] = DDIMScheduler.from_config(model.pipe.scheduler.config)
        options = {
            k: v for k, v in model.pipe.config.items() if k not in components and k[0] != "_"
        }
        self._pipe = type(model.pipe)(**components, **options)
        self._pipe.set_progress_bar_config(disable=True)
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._thread: threading.Thread | None = None
        self._image: Image.Image | None = None
        self._error: BaseException | None = None
        self.rendered = 0  # previews finished so far

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @torch.no_grad()
    def submit(self, factors: Factors, wait: bool = False) -> bool:
        """Start a preview of `factors` at the run's strength; returns False (and renders
        nothing) while another one renders, unless `wait`, which waits for it first."""
        if self.busy and not wait:
            return False
        self._join()
        snapshot = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in factors.items()}
        model = self.model
        cond = model.family.encode_prompt(model.pipe, self.prompt, self.device, (self.size,) * 2)
        inputs = {k: v.detach().clone() for k, v in model.family.prompt_inputs(cond).items()}
        ready = None
        if self._stream is not None:  # the snapshot is made on the loop's stream
            ready = torch.cuda.Event()
            ready.record()
        self._thread = threading.Thread(
            target=self._run, args=(snapshot, inputs, ready), name="ostaf-preview", daemon=True
        )
        self._thread.start()
        return True

    def take(self) -> Image.Image | None:
        """The preview that finished since the last call, if any (re-raises its error)."""
        if self._thread is not None and not self._thread.is_alive():
            self._join()
        image, self._image = self._image, None
        return image

    def finish(self) -> Image.Image | None:
        """Wait for the preview in flight, then take it."""
        self._join()
        return self.take()

    def wait(self) -> None:
        """Wait for a preview still rendering; its image and error are dropped (the run is
        ending for a reason of its own)."""
        with contextlib.suppress(Exception):
            self._join()

    def close(self) -> None:
        """Wait for the thread and unwrap the copy."""
        self.wait()
        self._stack.close()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self, factors: Factors, inputs: dict[str, torch.Tensor], ready: Any | None) -> None:
        try:
            with torch.no_grad(), self._on_own_stream(ready):
                self._image = self.render(factors, inputs)
                self.rendered += 1
        except BaseException as exc:  # handed to the loop's thread by take() / finish()
            self._error = exc

    @contextlib.contextmanager
    def _on_own_stream(self, ready: torch.cuda.Event | None) -> Iterator[None]:
        if self._stream is None or ready is None:
            yield
            return
        self._stream.wait_event(ready)
        with torch.cuda.stream(self._stream):
            yield
        self._stream.synchronize()

    def render(self, factors: Factors, inputs: dict[str, torch.Tensor]) -> Image.Image:
        """The inline preview's render (same sampler, steps, guidance and seed) through the
        copy, with `factors` at the run's strength."""
        model, settings = self.model, self.settings
        set_terms(self._wrappers, [(factors, float(settings.strength))], model.placement.dtype)

        def stop_if_cancelled(
            _pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]
        ) -> dict[str, Any]:
            self.cancel.check()
            return kwargs

        latents = self._pipe(
            **inputs,
            height=self.size,
            width=self.size,
            num_inference_steps=settings.preview_steps,
            guidance_scale=PREVIEW_GUIDANCE,
            generator=generator_for(self.device, settings.seed),
            output_type="latent",
            callback_on_step_end=stop_if_cancelled,
        ).images
        return decode_latents(model, latents)[0]


def room_beside(plan: MemoryPlan | None) -> bool:
    """Whether previews may render beside the loop: the memory preflight finds room for a
    second step's working memory next to the step's peak (a preview, a forward of two
    samples without gradients and a decode, needs less). Without a budget (the CPU pages
    rather than fails) there is room; without a plan there is none."""
    if plan is None:
        return False
    if plan.budget is None:
        return True
    return plan.fits and plan.estimate.total + plan.estimate.step <= plan.budget


@contextlib.contextmanager
def preview_worker(
    model: BaseModel,
    paths: Sequence[str],
    prompt: str,
    settings: TuningSettings,
    size: int,
    cancel: CancelToken,
    wanted: bool,
) -> Iterator[PreviewWorker | None]:
    """A PreviewWorker for the loop when `wanted` (and previews are on), else None."""
    if not wanted or not settings.preview_every:
        yield None
        return
    worker = PreviewWorker(model, paths, prompt, settings, size, cancel)
    try:
        yield worker
    finally:
        worker.close()


@contextlib.contextmanager
def settled(worker: PreviewWorker | None) -> Iterator[None]:
    """On leaving, wait for a preview still rendering: the loop's contexts put the U-Net's
    weights back (e.g. their layout) as they close, which a preview must not be reading."""
    try:
        yield
    finally:
        if worker is not None:
            worker.wait()
