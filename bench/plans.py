"""What `--quick` (a CPU, under 3 minutes), `--full` (a GPU, under 8 minutes) and
`--profile` measure, and how long; `--dry-run` shrinks a plan's models to run on a CPU."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ostaf.models.devices import Placement, cpu_job_threads

# Each toy-width architecture (`--dry-run`) and the shipped model whose layout it keeps.
TINY = {"sd15-tiny": "sd15", "sdxl-tiny": "sdxl"}


def tiny(arch: str) -> str:
    """The toy-width twin of `arch` (itself when it has none: the demo model is small)."""
    return next((t for t, a in TINY.items() if a == arch), arch)


@dataclass(frozen=True)
class Scale:
    """How each timing is repeated: alternating rounds, warm-up calls, timed calls."""

    rounds: int
    warmup: int
    calls: int
    cpu_memory: bool = True  # measure CPU peaks with the profiler (one extra call)


@dataclass(frozen=True)
class Case:
    """One model at one resolution, with how long to time it."""

    arch: str  # demo, sd15, sd21, sdxl (sd15-tiny, sdxl-tiny in a dry run)
    resolution: int
    scale: Scale
    timesteps: int = 4  # per tuning step (the default); fewer only to fit --quick's budget
    kinds: tuple[str, ...] = ("appearance", "shape")  # tuned by run and profile cases
    limit_s: float = 0.0  # a run longer than this is stopped and extrapolated (0: never)


@dataclass
class Plan:
    """Everything one benchmark run does."""

    mode: str
    command: str
    placement: Placement
    threads: int
    step_cases: list[Case]
    run_cases: list[Case]  # default tuning runs in-process, model loaded
    cli_run: bool  # `python -m ostaf tune … --model demo` as a subprocess
    render_cases: list[Case]  # calls = images per variant per round
    optimisation_case: Case
    preflight_cases: list[Case]
    render_steps: int = 25
    sections: set[str] = field(default_factory=set)
    profile_cases: list[Case] = field(default_factory=list)
    speed_case: Case | None = None  # each speed option against the plain loop
    run_baseline: bool = True  # time the whole-U-Net LoRA run (A) beside each default run
    time_limit_s: float = 0.0  # optional parts are left out past this (0: no limit)
    dry_run: bool = False
    started: float = 0.0  # time.perf_counter() when the run began (set by __main__)

    def seconds_left(self) -> float:
        """Seconds until the time limit (infinite without one)."""
        if not self.time_limit_s:
            return float("inf")
        return self.time_limit_s - (time.perf_counter() - self.started)

    def with_rounds(self, rounds: int) -> Plan:
        """The same plan with every timing repeated `rounds` times (tighter ratios)."""

        def more(cases: list[Case]) -> list[Case]:
            return [replace(c, scale=replace(c.scale, rounds=rounds)) for c in cases]

        return replace(
            self,
            step_cases=more(self.step_cases),
            render_cases=more(self.render_cases),
            optimisation_case=more([self.optimisation_case])[0],
            speed_case=None if self.speed_case is None else more([self.speed_case])[0],
        )

    def with_models(self, archs: set[str]) -> Plan:
        """The same plan restricted to the models in `archs` (demo, sd15, sd21)."""

        def keep(cases: list[Case]) -> list[Case]:
            return [c for c in cases if c.arch in archs]

        sections = set(self.sections)
        if self.optimisation_case.arch not in archs:
            sections -= {"optimisations", "compile"}
        if self.speed_case is not None and self.speed_case.arch not in archs:
            sections -= {"speed"}
        return replace(
            self,
            step_cases=keep(self.step_cases),
            run_cases=keep(self.run_cases),
            render_cases=keep(self.render_cases),
            preflight_cases=keep(self.preflight_cases),
            profile_cases=keep(self.profile_cases),
            cli_run=self.cli_run and "demo" in archs,
            sections=sections,
        )

    def shrunk(self) -> Plan:
        """The same plan on the toy-width twins of its models at 64 px (`--dry-run`): every
        section and step count as planned, at a CPU's speed."""

        def small(case: Case) -> Case:
            arch = tiny(case.arch)
            size = case.resolution if arch == case.arch else 64
            return replace(case, arch=arch, resolution=size)

        def every(cases: list[Case]) -> list[Case]:
            return [small(c) for c in cases]

        return replace(
            self,
            step_cases=every(self.step_cases),
            run_cases=every(self.run_cases),
            render_cases=every(self.render_cases),
            optimisation_case=small(self.optimisation_case),
            preflight_cases=every(self.preflight_cases),
            profile_cases=every(self.profile_cases),
            speed_case=None if self.speed_case is None else small(self.speed_case),
            dry_run=True,
        )


SECTIONS = (
    "profile",
    "tuning-run",
    "rendering",
    "speed",
    "tuning-step",
    "optimisations",
    "preflight",
    "compile",
    "sdxl",
)


def quick_plan(command: str, placement: Placement, threads: int | None) -> Plan:
    """Demo model throughout, plus the SD 1.5 architecture at 64 px for per-step ratios."""
    return Plan(
        mode="quick",
        command=command,
        placement=placement,
        threads=threads or cpu_job_threads(),
        step_cases=[
            Case("demo", 64, Scale(rounds=3, warmup=1, calls=3)),
            # The real SD 1.5 architecture: ~2 s a step here even at 64 px with one timestep.
            Case("sd15", 64, Scale(rounds=1, warmup=1, calls=1, cpu_memory=False), timesteps=1),
        ],
        run_cases=[],
        cli_run=True,
        render_cases=[Case("demo", 64, Scale(rounds=4, warmup=1, calls=1))],
        optimisation_case=Case("demo", 64, Scale(rounds=2, warmup=1, calls=2)),
        preflight_cases=[
            Case("demo", 64, Scale(1, 1, 1)),
            Case("sd15", 64, Scale(1, 1, 1), timesteps=1),
        ],
        sections=set(SECTIONS) - {"sdxl", "profile", "speed"},
    )


def sdxl_plan(command: str, placement: Placement, threads: int | None) -> Plan:
    """SDXL 1.0 beside SD 1.5 on a CPU: per-region tuning steps at 64 px against peft LoRAs,
    and the preflight's predictions for 512 / 1024 px in bf16 (a few minutes)."""
    once = Scale(rounds=1, warmup=1, calls=1)
    return Plan(
        mode="sdxl",
        command=command,
        placement=placement,
        threads=threads or cpu_job_threads(),
        step_cases=[Case("sd15", 64, once, timesteps=1), Case("sdxl", 64, once, timesteps=1)],
        run_cases=[],
        cli_run=False,
        render_cases=[],
        optimisation_case=Case("demo", 64, once),
        preflight_cases=[],
        sections={"sdxl"},
    )


def calibration_plan(command: str, placement: Placement, threads: int | None) -> Plan:
    """Preflight accuracy only, at several sizes (how WORKSPACE_FACTOR was fitted on CPU)."""
    once = Scale(1, 1, 1)
    return Plan(
        mode="calibrate",
        command=command,
        placement=placement,
        threads=threads or cpu_job_threads(),
        step_cases=[],
        run_cases=[],
        cli_run=False,
        render_cases=[],
        optimisation_case=Case("demo", 64, once),
        preflight_cases=[
            Case("demo", 64, once),
            Case("demo", 128, once),
            Case("demo", 256, once),
            Case("sd15", 64, once),
            Case("sd15", 128, once),
            Case("sd21", 64, once),
        ],
        sections={"preflight"},
    )


def full_plan(command: str, placement: Placement, threads: int | None) -> Plan:
    """Every figure of issue 28's targets in one call of under 8 minutes on one H100/H200:
    where a default run's time goes (SD 1.5 at 512 px, SDXL at 1024 px) with model FLOPs
    utilisation, the default runs' time and peak memory, start-up to the first step,
    rendering against the plain pipeline, the λ preview's latency, and each speed option
    against the plain loop. The other sections stay available with `--only` (their
    cases: SD 1.5 at 512 px, SD 2.1 at 768 px, SDXL at 1024 px, the demo model)."""
    steps = Scale(rounds=3, warmup=2, calls=6)
    return Plan(
        mode="full",
        command=command,
        placement=placement,
        threads=threads or (cpu_job_threads() if placement.device.type == "cpu" else 1),
        step_cases=[
            Case("sd15", 512, steps),
            Case("sd21", 768, steps),
            Case("sdxl", 1024, steps),
            Case("demo", 64, steps),
        ],
        run_cases=[
            Case("sd15", 512, Scale(1, 0, 1)),
            # At today's speed an SDXL run may take minutes: past 120 s it is stopped and
            # its time extrapolated from the steps done (the row says so).
            Case("sdxl", 1024, Scale(1, 0, 1), kinds=("appearance",), limit_s=120),
            Case("demo", 64, Scale(1, 0, 1)),
        ],
        cli_run=False,
        render_cases=[Case("sd15", 512, Scale(rounds=3, warmup=1, calls=2))],
        optimisation_case=Case("sd15", 512, Scale(rounds=3, warmup=3, calls=8)),
        preflight_cases=[
            Case("sd15", 512, Scale(1, 2, 1)),
            Case("sd21", 768, Scale(1, 2, 1)),
            Case("sdxl", 1024, Scale(1, 2, 1)),
        ],
        sections={"profile", "tuning-run", "rendering", "speed"},
        profile_cases=[
            Case("sd15", 512, Scale(1, warmup=10, calls=5), kinds=("appearance",)),
            Case("sdxl", 1024, Scale(1, warmup=6, calls=3), kinds=("appearance",)),
        ],
        speed_case=Case("sd15", 512, Scale(rounds=2, warmup=5, calls=20)),
        run_baseline=False,
        time_limit_s=450,
    )


def profile_plan(command: str, placement: Placement, threads: int | None) -> Plan:
    """`--profile` alone: the profile section of `--full` (SD 1.5 at 512 px and SDXL at
    1024 px on a GPU; their toy-width twins at 64 px on a CPU)."""
    plan = full_plan(command, placement, threads)
    plan.mode = "profile"
    plan.sections = {"profile"}
    return plan.shrunk() if placement.device.type == "cpu" else plan
