"""Benchmark rows: one measured figure beside the baseline measured in the same process,
written as JSON to bench/results/<date>-<device>.json and printed as a table."""

from __future__ import annotations

import json
import platform
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One figure: what was run, where, and how it compares with its same-run baseline."""

    section: str  # "tuning step", "tuning run", "rendering", "optimisation", "preflight"
    name: str  # what was measured
    command: str  # the command that produced it
    device: str  # e.g. "cpu, 1 thread" or "cuda NVIDIA H200"
    precision: str  # U-Net precision: fp32, bf16, fp16
    model: str  # demo, sd15, sd21
    resolution: int  # pixels (square)
    steps: int  # tuning steps timed per round, or sampling steps per image
    value: float
    unit: str  # "s/step", "images/s", "s", "GiB", ...
    baseline: str = ""  # the baseline measured in the same process
    baseline_value: float | None = None
    ratio: float | None = None  # value / baseline_value (median of per-round ratios if paired)
    peak_memory_gib: float | None = None
    baseline_peak_memory_gib: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    part: str = ""  # the `--only` section that produced it (set by Report.add)


@dataclass
class Report:
    """Every row of one benchmark run, plus where and with what it ran."""

    command: str
    device: str
    file_stem: str  # "<device>" (e.g. cpu, cuda-nvidia-h200), the date is put in front
    rows: list[Row] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    errors: list[str] = field(default_factory=list)
    part: str = ""  # the section running now
    parts_run: set[str] = field(default_factory=set)

    def start(self, part: str) -> None:
        self.part = part
        self.parts_run.add(part)

    def add(self, row: Row) -> None:
        row.part = self.part
        self.rows.append(row)
        print(format_row(row), flush=True)

    def fail(self, what: str, exc: BaseException) -> None:
        """Record a failed case; the run goes on with the next one."""
        self.errors.append(f"{self.part}: {what}: {type(exc).__name__}: {exc}")
        traceback.print_exc()

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run one case; a failure is recorded instead of ending the benchmark."""
        try:
            yield
        except Exception as exc:  # any failure of one case is reported, then the next runs
            self.fail(what, exc)

    def path(self) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", self.file_stem.lower()).strip("-")
        return RESULTS_DIR / f"{self.started[:10]}-{slug}.json"

    def write(self) -> Path:
        """Write (or rewrite) the JSON file; called after every section so nothing is lost."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(r) for r in self.rows]
        errors = list(self.errors)
        commands = [self.command]
        if path.is_file():  # an earlier run today on this device: keep what this one did not redo
            earlier = json.loads(path.read_text())
            redone = {_identity(r) for r in rows}
            kept = [r for r in earlier.get("rows", []) if _identity(r) not in redone]
            rows = kept + rows
            errors = [
                e for e in earlier.get("errors", []) if e.split(":")[0] not in self.parts_run
            ] + errors
            commands = [c for c in earlier.get("commands", []) if c != self.command] + commands
        data = {
            "commands": commands,
            "device": self.device,
            "started": self.started,
            "environment": environment(),
            "errors": errors,
            "rows": rows,
        }
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


def _identity(row: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rows the same measurement (a later run replaces an earlier one)."""
    keys = ("part", "model", "resolution", "precision", "name", "baseline")
    return tuple(row.get(k) for k in keys)


def environment() -> dict[str, str]:
    """Library versions and the machine, for the record."""
    found = {"python": platform.python_version(), "machine": platform.platform()}
    for package in ("torch", "diffusers", "transformers", "peft", "accelerate"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def format_value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def format_row(row: Row) -> str:
    """A one-line summary printed while the benchmark runs."""
    where = f"{row.model}@{row.resolution}px {row.precision}"
    base = ""
    if row.baseline:
        base = f" | vs {row.baseline}: {format_value(row.baseline_value, row.unit)}"
        base += f" → ×{row.ratio:.3f}" if row.ratio is not None else ""
    memory = ""
    if row.peak_memory_gib is not None:
        memory = f" | peak {row.peak_memory_gib:.3f} GiB"
        if row.baseline_peak_memory_gib is not None:
            memory += f" (baseline {row.baseline_peak_memory_gib:.3f})"
    return (
        f"[{row.section}] {row.name} ({where}): {format_value(row.value, row.unit)}{base}{memory}"
    )


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows, the shape BENCHMARKS.md uses."""
    header = "| section | measured | model | precision | value | baseline (same run) | ratio |"
    lines = [header + " peak mem |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = f"{r.baseline}: {format_value(r.baseline_value, r.unit)}" if r.baseline else "—"
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else "—"
        memory = f"{r.peak_memory_gib:.3f} GiB" if r.peak_memory_gib is not None else "—"
        if r.baseline_peak_memory_gib is not None:
            memory += f" (base {r.baseline_peak_memory_gib:.3f})"
        lines.append(
            f"| {r.section} | {r.name} | {r.model}@{r.resolution} | {r.precision} "
            f"| {format_value(r.value, r.unit)} | {base} | {ratio} | {memory} |"
        )
    return "\n".join(lines)
