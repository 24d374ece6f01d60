"""`python -m bench --quick` (CPU, under 3 minutes), `--sdxl` (CPU, SDXL beside SD 1.5, a
few minutes), `python -m bench --full` (a GPU, under 8 minutes) or `--profile` (where a
default run's time goes); `--dry-run` runs a plan's models at toy widths on a CPU.

Writes bench/results/<date>-<device>.json after every section and prints each row as it is
measured, then a table. Every row names its command, device, precision, resolution, steps
and the baseline measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import torch

import ostaf.models.offline  # noqa: F401  (before diffusers: no hub, quiet logs)
from bench.plans import (
    SECTIONS,
    Plan,
    calibration_plan,
    full_plan,
    profile_plan,
    quick_plan,
    sdxl_plan,
)
from bench.report import Report, table
from ostaf.models.devices import choose_placement


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="CPU: demo model, SD 1.5 at 64 px")
    mode.add_argument(
        "--full",
        action="store_true",
        help="GPU: issue 28's figures (SD 1.5 512 px, SDXL 1024 px), under 8 minutes",
    )
    mode.add_argument(
        "--sdxl", action="store_true", help="CPU: SDXL beside SD 1.5, steps and preflight"
    )
    mode.add_argument(
        "--calibrate", action="store_true", help="memory preflight vs measured, several sizes"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="where a default run's time goes (alone, or the part of --full it already runs)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the plan's models at toy widths and 64 px on the CPU (a rehearsal of --full)",
    )
    parser.add_argument(
        "--device", default=None, help="default: cpu (quick, dry run), cuda (full, profile)"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: ostaf's)")
    parser.add_argument("--rounds", type=int, default=0, help="repeat every timing N times")
    parser.add_argument("--models", default="", help="only these models, e.g. demo or sd15,sd21")
    args = parser.parse_args(argv)
    if not (args.quick or args.full or args.sdxl or args.calibrate or args.profile):
        parser.error("choose one of --quick, --full, --sdxl, --calibrate, --profile")
    return args


def make_plan(args: argparse.Namespace, argv: list[str] | None = None) -> Plan:
    # --profile alone falls back to its CPU rehearsal on a machine without a GPU.
    gpu = args.full or (args.profile and torch.cuda.is_available())
    device = args.device or ("cuda" if gpu and not args.dry_run else "cpu")
    placement = choose_placement(device, args.precision)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    make = (
        full_plan
        if args.full
        else calibration_plan
        if args.calibrate
        else sdxl_plan
        if args.sdxl
        else profile_plan
        if args.profile
        else quick_plan
    )
    plan = make(command.strip(), placement, args.threads)
    if args.full and args.profile:
        plan.sections.add("profile")
    if args.dry_run and not plan.dry_run:
        plan = plan.shrunk()
    if args.rounds > 0:
        plan = plan.with_rounds(args.rounds)
    if args.models:
        plan = plan.with_models({m.strip() for m in args.models.split(",") if m.strip()})
    if args.only:
        wanted = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = wanted - set(SECTIONS)
        if unknown:
            raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; use {SECTIONS}")
        plan.sections &= wanted
    return plan


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args, argv)
    if plan.placement.device.type == "cpu":
        os.environ["OSTAF_CPU_THREADS"] = str(plan.threads)  # what tune() and render() use
        torch.set_num_threads(plan.threads)
        torch.set_flush_denormal(True)  # random weights must not hit the CPU's slow path
    from bench.tuning_speed import device_label

    device = plan.placement.device
    stem = device.type
    if device.type == "cuda":
        stem += "-" + torch.cuda.get_device_name(device)
    if plan.mode in ("calibrate", "sdxl"):
        stem += f"-{plan.mode}"
    if plan.dry_run:
        stem += "-dry-run"
    report = Report(plan.command, device_label(plan), stem)
    print(f"{plan.command}: {report.device}, {plan.placement.label}", flush=True)
    started = time.perf_counter()
    plan.started = started
    for name, run in sections(plan).items():
        if name not in plan.sections:
            continue
        print(f"-- {name} (at {time.perf_counter() - started:.0f} s)", flush=True)
        section_start = time.perf_counter()
        report.start(name)
        with report.guard("the whole section"):
            run(plan, report)
        print(f"-- {name}: {time.perf_counter() - section_start:.1f} s", flush=True)
        path = report.write()
    path = report.write()
    print()
    print(table(report.rows))
    print(f"\n{len(report.rows)} rows in {time.perf_counter() - started:.0f} s → {path}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def sections(plan: Plan) -> dict[str, Callable[[Plan, Report], None]]:
    from bench.optimisations import compile_rows, optimisation_rows
    from bench.preflight_accuracy import preflight_rows
    from bench.profile import profile_rows
    from bench.rendering_speed import render_rows
    from bench.sdxl import sdxl_rows
    from bench.speed_options import speed_rows
    from bench.tuning_speed import cli_rows, run_rows, step_rows

    def tuning_runs(plan: Plan, report: Report) -> None:
        run_rows(plan, report)
        if plan.cli_run:
            cli_rows(plan, report)

    runs: dict[str, Callable[[Plan, Report], None]] = {
        "profile": profile_rows,
        "tuning-run": tuning_runs,
        "rendering": render_rows,
        "speed": speed_rows,
        "tuning-step": step_rows,
        "optimisations": optimisation_rows,
        "preflight": preflight_rows,
        "compile": compile_rows,
        "sdxl": sdxl_rows,
    }
    assert tuple(runs) == SECTIONS
    return runs


if __name__ == "__main__":
    sys.exit(main())
