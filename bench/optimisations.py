"""What each optimisation gains: the project's way ("after") against the way it avoids
("before"), timed in alternating rounds in the same process. Rows whose 'before' only
exists on a GPU say so instead of showing a figure."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from math import nan
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from bench.architectures import build_model, build_unet, precision_name
from bench.plans import Plan
from bench.report import Report, Row
from bench.timing import Step, Timings, Variant, time_calls, time_variants
from bench.tuning_speed import device_label
from bench.tuning_steps import hypernetwork_step, ostaf_step, random_batch
from ostaf.demo_data import demo_reference
from ostaf.devices import Placement, cpu_job_threads
from ostaf.hypernetwork import Hypernetwork, HypernetworkConfig
from ostaf.images import load_reference
from ostaf.offsets import OffsetLinear, offset_layers, set_terms, target_layers
from ostaf.regions import REGION_BY_KIND, AttributeKind, tuning_prompt
from ostaf.rendering import decode_latents, pipeline_for
from ostaf.tuning import _prepare

DECODER = REGION_BY_KIND[AttributeKind.APPEARANCE]
ENCODER = REGION_BY_KIND[AttributeKind.SHAPE]


class Ablations:
    """Runs each before/after pair on one model and adds a row per pair."""

    def __init__(self, plan: Plan, report: Report) -> None:
        self.plan = plan
        self.report = report
        self.case = plan.optimisation_case
        self.placement = plan.placement
        self.model = build_model(self.case.arch, self.placement)
        self.unet = self.model.unet
        self.scheduler_config = dict(self.model.pipe.scheduler.config)
        self.latent = self.case.resolution // int(self.model.pipe.vae_scale_factor)
        self.batch = random_batch(self.unet, self.placement, self.latent, views=2)

    def run_all(self) -> None:
        for ablation in (
            self.cached_inputs,
            self.batched_timesteps,
            self.sdpa,
            self.backward_scope,
            self.checkpointing,
            self.hypernetwork_share,
            self.fused_adamw,
            self.fused_offsets,
            self.batched_heads,
            self.merged_rendering,
            self.merge_reuse,
            self.warm_service,
            self.cpu_threads,
            self.precision,
        ):
            with self.report.guard(ablation.__name__):
                ablation()

    def _ostaf(self, **options: Any) -> AbstractContextManager[Step]:
        """The project's decoder-region tuning step on this model."""
        return ostaf_step(
            self.unet, self.placement, self.scheduler_config, self.batch, DECODER, **options
        )

    def _step(self, **options: Any) -> Variant:
        return lambda: self._ostaf(**options)

    def _row(
        self,
        name: str,
        timings: Timings,
        after: str,
        before: str,
        unit: str = "s/step",
        notes: str = "",
        inverse: bool = False,
    ) -> None:
        value, base = timings.median(after), timings.median(before)
        ratio = timings.ratio(after, before)
        if inverse:  # a rate: images/s
            value, base, ratio = 1 / value, 1 / base, timings.ratio(before, after)
        self.report.add(
            Row(
                section="optimisation",
                name=name,
                command=self.plan.command,
                device=device_label(self.plan),
                precision=precision_name(self.placement.dtype),
                model=self.case.arch,
                resolution=self.case.resolution,
                steps=self.case.scale.calls,
                value=value,
                unit=unit,
                baseline=before,
                baseline_value=base,
                ratio=ratio,
                peak_memory_gib=timings.peak_gib(after),
                baseline_peak_memory_gib=timings.peak_gib(before),
                notes=notes,
                extra={
                    "rounds_s": timings.seconds[after],
                    "before_rounds_s": timings.seconds[before],
                },
            )
        )

    def _not_measured(self, name: str, why: str) -> None:
        self.report.add(
            Row(
                section="optimisation",
                name=name,
                command=self.plan.command,
                device=device_label(self.plan),
                precision=precision_name(self.placement.dtype),
                model=self.case.arch,
                resolution=self.case.resolution,
                steps=0,
                value=float("nan"),
                unit="",
                notes=why,
            )
        )

    def _time(self, variants: dict[str, Variant], memory: bool = False) -> Timings:
        s = self.case.scale
        return time_variants(
            variants, self.placement.device, s.rounds, s.warmup, s.calls, memory and s.cpu_memory
        )

    # -- tuning ---------------------------------------------------------------------------

    def cached_inputs(self) -> None:
        """Latents and text embedding once per run vs encoded again every step."""
        with tempfile.TemporaryDirectory() as folder:
            path = demo_reference(Path(folder) / "reference.png")
            reference = load_reference(path, self.model.resolution)
        prompt = tuning_prompt(AttributeKind.APPEARANCE, "sks")
        model = self.model

        @contextmanager
        def every_step() -> Iterator[Step]:
            with self._ostaf() as step:

                def encode_then_step() -> object:
                    _prepare(model, reference, prompt, True)
                    return step()

                yield encode_then_step

        timings = self._time({"once per run": self._step(), "every step": every_step})
        self._row(
            "latents and text embedding computed once (VAE + text encoder off the loop)",
            timings,
            "once per run",
            "every step",
        )

    def batched_timesteps(self) -> None:
        """Four timesteps in one U-Net pass vs four passes of one (same gradient)."""
        timings = self._time(
            {"4 per pass": self._step(per_pass=4), "1 per pass": self._step(per_pass=1)},
            memory=True,
        )
        self._row("4 timesteps batched in one pass per step", timings, "4 per pass", "1 per pass")

    def sdpa(self) -> None:
        """PyTorch SDPA attention (diffusers' default) vs the classic attention processor."""

        def with_processor(processor: Callable[[], object]) -> Variant:
            @contextmanager
            def variant() -> Iterator[Step]:
                self.unet.set_attn_processor(processor())
                try:
                    with self._ostaf() as step:
                        yield step
                finally:
                    self.unet.set_attn_processor(AttnProcessor2_0())

            return variant

        timings = self._time(
            {"SDPA": with_processor(AttnProcessor2_0), "classic": with_processor(AttnProcessor)},
            memory=True,
        )
        self._row("SDPA attention (AttnProcessor2_0)", timings, "SDPA", "classic")

    def backward_scope(self) -> None:
        """Decoder targets: autograd records nothing in the encoder. 'Before' forces the whole
        U-Net into the graph (input requiring grad), as a loop that does not prune would."""
        counts = self._saved_by_block()

        @contextmanager
        def whole_graph() -> Iterator[Step]:
            hook = self.unet.register_forward_pre_hook(_input_requires_grad, with_kwargs=True)
            try:
                with self._ostaf() as step:
                    yield step
            finally:
                hook.remove()

        timings = self._time({"pruned": self._step(), "whole U-Net": whole_graph}, memory=True)
        self._row(
            "no backward through parts without targets (decoder region)",
            timings,
            "pruned",
            "whole U-Net",
            notes=f"bytes saved for backward per top-level block, decoder region: {counts}",
        )

    def _saved_by_block(self) -> dict[str, int]:
        """Bytes autograd saves per top-level U-Net block in one decoder-region step."""
        saved: dict[str, int] = {}
        current = ["other"]
        handles = []
        for name, module in self.unet.named_children():
            for child_name, child in (
                module.named_children() if name.endswith("blocks") else [("", module)]
            ):
                label = f"{name}.{child_name}" if child_name else name

                def enter(_m: object, _a: object, label: str = label) -> None:
                    current.append(label)

                def leave(_m: object, _a: object, _o: object) -> None:
                    current.pop()

                handles += [
                    child.register_forward_pre_hook(enter),
                    child.register_forward_hook(leave),
                ]
        seen: set[int] = set()
        parameters = {p.untyped_storage().data_ptr() for p in self.unet.parameters()}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in seen and storage.data_ptr() not in parameters:
                seen.add(storage.data_ptr())
                saved[current[-1]] = saved.get(current[-1], 0) + storage.nbytes()
            return tensor

        try:
            with (
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
                self._ostaf() as step,
            ):
                step()
        finally:
            for handle in handles:
                handle.remove()
        return {k: v for k, v in sorted(saved.items())}

    def checkpointing(self) -> None:
        """Gradient checkpointing costs time: the preflight turns it on only when needed."""
        timings = self._time(
            {"off": self._step(), "on": self._step(checkpointing=True)}, memory=True
        )
        self._row(
            "gradient checkpointing off unless memory requires it",
            timings,
            "off",
            "on",
            notes="'before' = checkpointing always on; compare the peak memory columns",
        )

    def hypernetwork_share(self) -> None:
        """What the hypernetwork costs a step whatever the resolution: its forward, backward,
        gradient clipping and AdamW, against the whole step."""
        alone = partial(hypernetwork_step, self.unet, self.placement, DECODER)
        timings = self._time({"hypernetwork": alone, "whole step": self._step()})
        self._row(
            "hypernetwork's fixed cost (forward, backward, clip, AdamW) vs the whole step",
            timings,
            "hypernetwork",
            "whole step",
        )

    def fused_adamw(self) -> None:
        """The hypernetwork's AdamW as one fused kernel vs PyTorch's default implementation."""
        timings = self._time({"fused": self._step(), "default": self._step(fused_optimizer=False)})
        self._row("fused AdamW for the hypernetwork", timings, "fused", "default")

    def fused_offsets(self) -> None:
        """The offset added inside the up-projection's matmul (addmm) with λ/r folded into A
        once per step, vs a separate scale and add over the layer's output at every call."""

        def unfused(layer: OffsetLinear, x: torch.Tensor) -> torch.Tensor:
            y = layer.base_layer(x)
            for scaled_a, b in layer.terms:
                y = y + 1.0 * F.linear(F.linear(x, b.to(x.dtype)), scaled_a.to(x.dtype))
            return y

        timings = self._time(
            {"addmm": self._step(), "scale + add": _patched(OffsetLinear, "forward", unfused, self)}
        )
        self._row("offsets fused into addmm, λ/r folded into A", timings, "addmm", "scale + add")

    def batched_heads(self) -> None:
        """One gather and one call per head for each shape group, rows split by unbind, vs a
        gather per group with its index copied to the device and a view per row."""

        def per_row(hyper: Hypernetwork) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
            r = hyper.config.rank
            hidden = hyper.trunk(hyper.codes + hyper.kind_embedding(hyper.kind_ids))
            groups: dict[str, list[int]] = {}
            for index, target in enumerate(hyper.targets):
                groups.setdefault(target.shape_key, []).append(index)
            factors = {}
            for key, members in groups.items():
                h = hidden[torch.tensor(members).to(hidden.device)]
                up, down = hyper.up_heads[key](h), hyper.down_heads[key](h)
                for row, index in enumerate(members):
                    t = hyper.targets[index]
                    factors[t.path] = (
                        up[row].view(t.out_features, r),
                        down[row].view(r, t.in_features),
                    )
            return factors

        timings = self._time(
            {"grouped": self._step(), "per row": _patched(Hypernetwork, "forward", per_row, self)}
        )
        self._row("hypernetwork heads: one call per shape group", timings, "grouped", "per row")

    # -- rendering ------------------------------------------------------------------------

    def merge_reuse(self) -> None:
        """Rendering again with the same attributes merges nothing; 'before' re-merges."""
        paths = DECODER.select(n for n, _ in self.unet.named_modules())
        hyper = Hypernetwork(target_layers(self.unet, paths), HypernetworkConfig())
        with torch.no_grad():
            factors = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in hyper().items()}
        merger = self.model.merger

        @contextmanager
        def reuse() -> Iterator[Step]:
            yield lambda: merger.apply([(factors, 0.8)])

        @contextmanager
        def remerge() -> Iterator[Step]:
            def step() -> None:
                merger.restore()
                merger.apply([(factors, 0.8)])

            yield step

        s = self.case.scale
        try:
            timings = time_variants(
                {"re-used": reuse, "re-merged": remerge}, self.placement.device, s.rounds, 1, 20
            )
        finally:
            merger.restore()
        self._row(
            "unchanged attributes are not merged again between renders",
            timings,
            "re-used",
            "re-merged",
            unit="s/render call",
            notes=f"{len(factors)} target layers; per render() call, before sampling",
        )

    def merged_rendering(self) -> None:
        """Attributes merged into the weights vs applied by wrappers at every layer call."""
        model = self.model
        paths = DECODER.select(n for n, _ in self.unet.named_modules())
        hyper = Hypernetwork(target_layers(self.unet, paths), HypernetworkConfig())
        for head in hyper.up_heads.values():
            assert isinstance(head, torch.nn.Linear)
            torch.nn.init.normal_(head.weight, std=0.01)
        with torch.no_grad():
            factors = {p: (a.detach().clone(), b.detach().clone()) for p, (a, b) in hyper().items()}
        pipe = pipeline_for(model, "dpmpp2m")
        steps = self.plan.render_steps

        def image() -> object:
            latents = pipe(
                "a sks vase",
                num_inference_steps=steps,
                generator=torch.Generator("cpu").manual_seed(0),
                output_type="latent",
            ).images
            return decode_latents(model, latents)

        @contextmanager
        def merged() -> Iterator[Step]:
            model.merger.apply([(factors, 1.0)])
            try:
                yield image
            finally:
                model.merger.restore()

        @contextmanager
        def wrapped() -> Iterator[Step]:
            with offset_layers(self.unet, paths) as wrappers:
                set_terms(wrappers, [(factors, 1.0)], self.placement.dtype)
                yield image

        s = self.case.scale
        timings = time_variants(
            {"merged": merged, "wrapped": wrapped}, self.placement.device, s.rounds, 1, 1
        )
        self._row(
            "attributes merged into the weights for rendering",
            timings,
            "merged",
            "wrapped",
            unit="images/s",
            inverse=True,
            notes=f"{steps} dpmpp2m steps, batch 1; 'before' adds A(Bx) in every target layer",
        )

    def warm_service(self) -> None:
        """The service keeps the model loaded between jobs; 'before' loads it for every job."""
        if self.case.arch != "demo":
            self._not_measured(
                "pipeline kept warm between jobs",
                "measured on the demo model only (random SD weights have no load path)",
            )
            return
        from ostaf.requests import ModelChoice, RenderJob, RenderSettings
        from ostaf.service import OstafService

        choice = ModelChoice(
            "demo", self.placement.device.type, precision_name(self.placement.dtype)
        )
        job = RenderJob(
            RenderSettings(prompt="a sks vase", steps=self.plan.render_steps), None, choice
        )
        warm = OstafService()
        warm.render(job)

        @contextmanager
        def warm_job() -> Iterator[Step]:
            yield lambda: warm.render(job)

        @contextmanager
        def cold_job() -> Iterator[Step]:
            yield lambda: OstafService().render(job)

        s = self.case.scale
        timings = time_variants(
            {"warm": warm_job, "cold": cold_job}, self.placement.device, s.rounds, 0, 1
        )
        self._row(
            "pipeline kept warm between jobs (render job)", timings, "warm", "cold", unit="s/job"
        )

    # -- device-specific ------------------------------------------------------------------

    def cpu_threads(self) -> None:
        """CPU jobs use one core less than the machine has (see ostaf.devices.job_threads)."""
        if self.placement.device.type != "cpu":
            return
        chosen = cpu_job_threads()
        every = torch.get_num_threads() if chosen != torch.get_num_threads() else chosen + 1
        every = max(every, len(_affinity()))

        def with_threads(count: int) -> Variant:
            @contextmanager
            def variant() -> Iterator[Step]:
                before = torch.get_num_threads()
                torch.set_num_threads(count)
                try:
                    with self._ostaf() as step:
                        yield step
                finally:
                    torch.set_num_threads(before)

            return variant

        # One round: an over-subscribed step takes seconds on a busy machine.
        timings = time_variants(
            {f"{chosen} thread(s)": with_threads(chosen), f"{every} threads": with_threads(every)},
            self.placement.device,
            1,
            1,
            self.case.scale.calls,
        )
        self._row(
            "CPU job threads: one core left free",
            timings,
            f"{chosen} thread(s)",
            f"{every} threads",
            notes="torch's default is one thread per core; the machine was shared while measured",
        )

    def precision(self) -> None:
        """bf16/fp16 U-Net with an fp32 hypernetwork vs an fp32 U-Net."""
        device = self.placement.device
        if device.type != "cuda":
            self._not_measured(
                "fp16/bf16 U-Net with fp32 hypernetwork vs fp32", "not yet measured on a GPU"
            )
            return
        variants: dict[str, Variant] = {}
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            placement = Placement(device, dtype)
            unet = (
                build_unet(self.case.arch, placement)
                if dtype != self.placement.dtype
                else self.unet
            )
            batch = random_batch(unet, placement, self.latent, views=2)
            variants[precision_name(dtype)] = partial(
                ostaf_step, unet, placement, self.scheduler_config, batch, DECODER
            )
        timings = self._time(variants, memory=True)
        for low in ("bf16", "fp16"):
            self._row(f"{low} U-Net, fp32 hypernetwork", timings, low, "fp32")

    def compiled(self) -> None:
        """torch.compile of the U-Net (default and CUDA-graph modes): kept only if it wins."""
        device = self.placement.device
        if device.type != "cuda":
            self._not_measured(
                "torch.compile / CUDA graphs",
                "not yet measured on a GPU (on this CPU the compile alone outlasts a demo run)",
            )
            return
        original = self.unet.forward
        for mode in ("default", "reduce-overhead"):
            # One compiled function per mode, made once: alternating modes on one function
            # would make dynamo recompile (or silently fall back to eager) every round.
            torch._dynamo.reset()
            compiled = torch.compile(original, mode=mode)
            first: list[float] = []

            @contextmanager
            def with_compiled(
                compiled: Callable[..., Any] = compiled, first: list[float] = first
            ) -> Iterator[Step]:
                self.unet.forward = compiled
                try:
                    with self._ostaf() as step:
                        if not first:
                            first.append(time_calls(step, 1, device))
                        yield step
                finally:
                    self.unet.forward = original

            timings = self._time({"eager": self._step(), mode: with_compiled})
            self._row(
                f"torch.compile mode={mode}",
                timings,
                mode,
                "eager",
                notes=f"first step incl. compilation: {first[0] if first else nan:.1f} s",
            )
        torch._dynamo.reset()


def _patched(
    owner: type, name: str, replacement: Callable[..., Any], ablations: Ablations
) -> Variant:
    """A decoder-region step with `owner.name` replaced by the way it used to be done."""

    @contextmanager
    def variant() -> Iterator[Step]:
        original = getattr(owner, name)
        setattr(owner, name, replacement)
        try:
            with ablations._ostaf() as step:
                yield step
        finally:
            setattr(owner, name, original)

    return variant


def _input_requires_grad(
    _module: torch.nn.Module, args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[tuple[object, ...], dict[str, object]]:
    sample = args[0]
    assert isinstance(sample, torch.Tensor)
    return (sample.detach().requires_grad_(True), *args[1:]), kwargs


def _affinity() -> set[int]:
    import os

    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def optimisation_rows(plan: Plan, report: Report) -> None:
    Ablations(plan, report).run_all()


def compile_rows(plan: Plan, report: Report) -> None:
    """torch.compile and CUDA graphs, a section of its own: compiling takes minutes."""
    Ablations(plan, report).compiled()
