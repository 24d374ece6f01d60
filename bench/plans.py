"""What `--quick` (a CPU, under 3 minutes) and `--full` (a GPU) measure, and how long."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ostaf.models.devices import Placement, cpu_job_threads


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

    arch: str  # demo, sd15, sd21, sdxl
    resolution: int
    scale: Scale
    timesteps: int = 4  # per tuning step (the default); fewer only to fit --quick's budget


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

    def with_rounds(self, rounds: int) -> Plan:
        """The same plan with every timing repeated `rounds` times (tighter ratios)."""

        def more(cases: list[Case]) -> list[Case]:
            return [replace(c, scale=replace(c.scale, rounds=rounds)) for c in cases]

        return replace(
            self,
            step_cases=more(self.step_cases),
            render_cases=more(self.render_cases),
            optimisation_case=more([self.optimisation_case])[0],
        )

    def with_models(self, archs: set[str]) -> Plan:
        """The same plan restricted to the models in `archs` (demo, sd15, sd21)."""

        def keep(cases: list[Case]) -> list[Case]:
            return [c for c in cases if c.arch in archs]

        sections = set(self.sections)
        if self.optimisation_case.arch not in archs:
            sections -= {"optimisations", "compile"}
        return replace(
            self,
            step_cases=keep(self.step_cases),
            run_cases=keep(self.run_cases),
            render_cases=keep(self.render_cases),
            preflight_cases=keep(self.preflight_cases),
            cli_run=self.cli_run and "demo" in archs,
            sections=sections,
        )


SECTIONS = (
    "tuning-step",
    "tuning-run",
    "rendering",
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
        sections=set(SECTIONS) - {"sdxl"},
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
    """The real sizes on a GPU: SD 1.5 at 512 px, SD 2.1 at 768 px, SDXL at 1024 px and the
    demo model."""
    # Sized so that the whole run takes about ten minutes on one H200 (see BENCHMARKS.md).
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
            Case("sd21", 768, Scale(1, 0, 1)),
            Case("sdxl", 1024, Scale(1, 0, 1)),
            Case("demo", 64, Scale(1, 0, 1)),
        ],
        cli_run=True,
        render_cases=[
            Case("sd15", 512, Scale(rounds=3, warmup=1, calls=2)),
            Case("sd21", 768, Scale(rounds=3, warmup=1, calls=1)),
            Case("demo", 64, Scale(rounds=3, warmup=1, calls=2)),
        ],
        optimisation_case=Case("sd15", 512, Scale(rounds=3, warmup=3, calls=8)),
        preflight_cases=[
            Case("sd15", 512, Scale(1, 2, 1)),
            Case("sd21", 768, Scale(1, 2, 1)),
            Case("sdxl", 1024, Scale(1, 2, 1)),
        ],
        sections=set(SECTIONS) - {"sdxl"},
    )
