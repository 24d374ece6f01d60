"""Figures of the desktop app for BENCHMARKS.md (not a test):

1. start-up: from launching `python main.py` to the window painted (median of several runs);
2. responsiveness: the longest GUI event-loop stall while a tuning run is in progress, from a
   10 ms timer whose lateness is recorded (with an idle baseline for the machine's own noise);
3. feedback: from pressing Tune to the first preview thumbnail, on the demo model.

    QT_QPA_PLATFORM=offscreen python bench/desktop_figures.py [--runs 5] [--steps 300]
        [--keep-home DIR]   # leave the project (tuned, rendered) there, e.g. for a screenshot
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
PROBE_MS = 10
PAINTED = re.compile(r"window painted at epoch ([0-9.]+)")


def startup_seconds(home: Path, runs: int) -> list[float]:
    """Seconds from launching `python main.py` to the first paint of its window."""
    times = []
    for run in range(runs + 1):  # the first run only warms the disk cache and .pyc files
        log = home / "logs" / "ostaf-desktop.log"
        log.unlink(missing_ok=True)
        env = dict(os.environ, OSTAF_HOME=str(home))
        start = time.time()
        process = subprocess.Popen(
            [sys.executable, "main.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        painted = None
        try:
            deadline = time.time() + 120
            while painted is None and time.time() < deadline:
                time.sleep(0.02)
                text = log.read_text() if log.exists() else ""
                match = PAINTED.search(text)
                painted = float(match.group(1)) if match else None
        finally:
            process.terminate()
            process.wait(30)
        if painted is None:
            raise RuntimeError("the window was not painted within 120 s")
        if run:
            times.append(painted - start)
    return times


class LagProbe:
    """A 10 ms Qt timer; the gaps between its ticks show how long the event loop stalled."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> list[float]:
        """The stalls in seconds: each gap minus the timer interval."""
        self.timer.stop()
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)]
        return [max(0.0, g - PROBE_MS / 1000) for g in gaps]


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Run the Qt event loop (not a busy loop) until `predicate()` holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    timer = QTimer()
    timer.timeout.connect(
        lambda: (predicate() or time.monotonic() > deadline) and loop.quit()  # type: ignore[func-returns-value]
    )
    timer.start(20)
    loop.exec()
    timer.stop()
    if not predicate():
        raise TimeoutError(f"gave up after {timeout_s} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def tuning_figures(home: Path, steps: int) -> dict[str, float]:
    """Tune on the demo model in the real window; stalls and Tune → first preview."""
    os.environ["OSTAF_HOME"] = str(home)
    from PySide6.QtWidgets import QApplication

    from ostaf.world.demo_reference import DEMO_PROMPT
    from ostaf_desktop.backend import CoreBackend
    from ostaf_desktop.theme import apply_theme
    from ostaf_desktop.viewmodels.main import MainViewModel
    from ostaf_desktop.widgets.main_window import DEFAULT_SIZE, MainWindow

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    apply_theme(app)
    vm = MainViewModel(CoreBackend)
    window = MainWindow(vm)
    window.resize(DEFAULT_SIZE)
    window.show()
    vm.start()
    wait_until(lambda: vm.session.model is not None, 300)
    if vm.projects.current is None or vm.projects.current.name != "Demo":
        vm.projects.create("Demo")
    vm.reference.open_sample()
    vm.tuning.class_word = "star"
    vm.tuning.name = "Orange stripes"
    vm.tuning.steps = steps

    probe = LagProbe()
    probe.start()
    wait_until(lambda: len(probe.ticks) > 200, 60)
    idle_stalls = probe.stop()

    probe.start()
    pressed = time.perf_counter()
    vm.tuning.tune()
    wait_until(lambda: bool(vm.tuning.previews), 300)
    first_preview = time.perf_counter() - pressed
    wait_until(lambda: not vm.tuning.running, 1200)
    tuned = time.perf_counter() - pressed
    stalls = probe.stop()

    wait_until(lambda: vm.idle and vm.rendering.preview_image is not None, 300)
    vm.rendering.prompt = DEMO_PROMPT
    vm.rendering.render()
    wait_until(lambda: not vm.rendering.rendering, 300)
    window.close()
    return {
        "steps": steps,
        "first_preview_s": first_preview,
        "tune_total_s": tuned,
        "stall_max_ms": max(stalls) * 1000,
        "stall_p99_ms": percentile(stalls, 0.99) * 1000,
        "stall_median_ms": statistics.median(stalls) * 1000,
        "idle_stall_max_ms": max(idle_stalls) * 1000,
        "probe_ticks": len(stalls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--keep-home", type=Path, default=None)
    args = parser.parse_args()
    home = args.keep_home or Path(tempfile.mkdtemp(prefix="ostaf-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    startup = startup_seconds(home, args.runs)
    print(
        f"start-up to window painted: median {statistics.median(startup):.2f} s "
        f"(min {min(startup):.2f}, max {max(startup):.2f}, {len(startup)} runs)"
    )
    figures = tuning_figures(home, args.steps)
    print(
        f"tuning {figures['steps']:.0f} steps took {figures['tune_total_s']:.1f} s; "
        f"Tune → first preview {figures['first_preview_s']:.2f} s"
    )
    print(
        f"GUI stall while tuning: max {figures['stall_max_ms']:.0f} ms, "
        f"p99 {figures['stall_p99_ms']:.0f} ms, median {figures['stall_median_ms']:.1f} ms "
        f"over {figures['probe_ticks']:.0f} ticks (idle baseline max "
        f"{figures['idle_stall_max_ms']:.0f} ms)"
    )
    print(f"home: {home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
