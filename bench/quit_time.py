"""How long quitting takes: the app opens on the demo model (offscreen), waits until it is
idle (or until a tuning run is 30 steps in, with --tune), closes its window, and the time
from the close to the end of the process is measured from outside.

    python bench/quit_time.py [--tune] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child(tune: bool) -> None:
    """Run the app; print the moment the window is closed."""
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer

    import ostaf_desktop.app as app_module
    import ostaf_desktop.widgets.main_window as main_window
    from ostaf_desktop.launcher import main

    build = app_module.build_window
    main_window.confirm = lambda parent, title, text: True  # quit mid-run without asking
    reference = Path(tempfile.mkdtemp()) / "reference.png"

    def build_and_close(options: Any, relay: Any) -> Any:
        window, vm = build(options, relay)
        state = {"tuning": False, "idle_since": 0.0}

        def poll() -> None:
            if vm.session.model is None:
                return
            if tune and not state["tuning"]:
                if vm.jobs.idle:
                    from PIL import Image

                    Image.new("RGB", (96, 96), (200, 60, 40)).save(reference)
                    vm.reference.open_image(reference)
                    vm.tuning.steps = 3000
                    state["tuning"] = vm.tuning.tune() is not None
                return
            if tune and vm.tuning.step < 30:
                return
            if not tune:
                if not vm.jobs.idle:
                    state["idle_since"] = 0.0
                    return
                state["idle_since"] = state["idle_since"] or time.perf_counter()
                if time.perf_counter() - state["idle_since"] < 2.0:
                    return
            timer.stop()
            print(f"CLOSE {time.time():.6f}", flush=True)
            window.close()

        timer = QTimer(window)
        timer.timeout.connect(poll)
        timer.start(100)
        return window, vm

    app_module.build_window = build_and_close
    sys.exit(main([]))


def measure(tune: bool) -> float:
    """Seconds from the window's close to the end of the process."""
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, OSTAF_HOME=home, QT_QPA_PLATFORM="offscreen")
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", *(["--tune"] if tune else [])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        closed = 0.0
        for line in process.stdout:
            if line.startswith("CLOSE "):
                closed = float(line.split()[1])
        process.wait()
        ended = time.time()
        if not closed or process.returncode != 0:
            raise SystemExit(f"the app did not close cleanly (exit code {process.returncode})")
        return ended - closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tune", action="store_true", help="quit while a tuning run is going")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.tune)
        return
    times = [measure(args.tune) for _ in range(args.repeat)]
    what = "during a tuning run" if args.tune else "idle"
    print(
        f"quit ({what}): " + ", ".join(f"{t:.2f}" for t in times) + " s; "
        f"median {statistics.median(times):.2f} s"
    )


if __name__ == "__main__":
    main()
