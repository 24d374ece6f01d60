"""Soak: the real app under Xvfb, driven for N minutes through tuning runs of every kind,
renders, λ previews, the library, dialogs and batch exports (bench/soak_driver.py), restarted
after each session, crash or hang; reports crashes and hangs per hour. Not a test.

    python -m bench.soak --minutes 60 [--seed 0] [--session-minutes 15] [--home DIR]
        [--offscreen] [--out bench/results/soak.json]

A crash is a session that ends with another exit code than 0 (a segfault is -11); a hang is a
GUI thread that stops its 5 s heartbeat for --hang-s seconds (the app is then sent SIGABRT, so
that faulthandler writes every thread's stack into its crash log, and killed after 20 s; a
SIGTERM would ask it to quit), or a
job still running after 15 minutes. The data folder is kept across sessions, as a user's is:
a session killed during a run is offered for resume at the next start.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREEN = "1440x900x24"


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """An X server on the first free display from :90."""
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb is not installed (apt-get install xvfb), or use --offscreen")
    for number in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():
            display = f":{number}"
            server = subprocess.Popen(
                ["Xvfb", display, "-screen", "0", SCREEN, "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    return server, display
                time.sleep(0.05)
            server.kill()
    raise SystemExit("no free X display between :90 and :119")


def read_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return events


def newest_crash_log(home: Path, since: float) -> str:
    logs = [p for p in (home / "runs").glob("*.crash.log") if p.stat().st_mtime >= since]
    if not logs:
        return ""
    text = max(logs, key=lambda p: p.stat().st_mtime).read_text(errors="replace")
    return "\n".join(text.splitlines()[:40])


def run_session(
    args: argparse.Namespace, env: dict[str, str], events: Path, seed: int, session_s: float
) -> dict[str, object]:
    """One launch of the app until it quits, dies or hangs."""
    started = time.time()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--child",
            "--events",
            str(events),
            "--seed",
            str(seed),
            "--session-s",
            str(session_s),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(args.home / "soak-stderr.log").open("ab"),
    )
    hung = ""
    while child.poll() is None:
        time.sleep(2)
        beats = [e for e in read_events(events) if float(str(e["t"])) >= started]
        last = max((float(str(e["t"])) for e in beats), default=started)
        if time.time() - last > args.hang_s:
            hung = f"no heartbeat for {time.time() - last:.0f} s"
        elif any(e["event"] == "stuck" for e in beats):
            hung = "a job did not finish within 15 minutes"
        if hung:
            child.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    code = child.returncode
    outcome = "hang" if hung else ("ok" if code == 0 else "crash")
    return {
        "seed": seed,
        "started": started,
        "seconds": round(time.time() - started, 1),
        "exit_code": code,
        "outcome": outcome,
        "why": hung,
        "crash_log": newest_crash_log(args.home, started) if outcome != "ok" else "",
    }


def summarise(sessions: list[dict[str, object]], events: list[dict[str, object]]) -> dict:
    hours = sum(float(str(s["seconds"])) for s in sessions) / 3600
    outcomes = Counter(str(s["outcome"]) for s in sessions)
    kinds = Counter(str(e.get("kind")) for e in events if e["event"] == "tuned")
    actions = Counter(str(e["event"]) for e in events if e["event"] not in ("tick",))
    return {
        "hours": round(hours, 3),
        "sessions": len(sessions),
        "crashes": outcomes["crash"],
        "hangs": outcomes["hang"],
        "crashes_per_hour": round(outcomes["crash"] / hours, 2) if hours else None,
        "hangs_per_hour": round(outcomes["hang"] / hours, 2) if hours else None,
        "tuning_runs_by_kind": dict(kinds),
        "actions": dict(actions),
        "dialogs": dict(Counter(str(e.get("name")) for e in events if e["event"] == "dialog")),
        # How sessions were ended: the window closed, or SIGTERM as a logout sends it.
        "quits": dict(Counter(str(e.get("by", "window")) for e in events if e["event"] == "quit")),
        "errors_shown": [str(e.get("text")) for e in events if e["event"] == "error"],
    }


def parent(args: argparse.Namespace) -> int:
    args.home.mkdir(parents=True, exist_ok=True)
    events = args.home / "soak-events.jsonl"
    env = dict(os.environ, OSTAF_HOME=str(args.home), PYTHONFAULTHANDLER="1")
    server = None
    if args.offscreen:
        env["QT_QPA_PLATFORM"] = "offscreen"
    else:
        server, env["DISPLAY"] = start_xvfb()
        env["QT_QPA_PLATFORM"] = "xcb"
    deadline = time.time() + args.minutes * 60
    sessions: list[dict[str, object]] = []
    try:
        seed = args.seed
        while time.time() < deadline - 30:
            session_s = min(args.session_minutes * 60, max(30.0, deadline - time.time()))
            session = run_session(args, env, events, seed, session_s)
            sessions.append(session)
            print(json.dumps({k: v for k, v in session.items() if k != "crash_log"}), flush=True)
            if session["crash_log"]:
                print(session["crash_log"], flush=True)
            seed += 1
    finally:
        if server is not None:
            server.terminate()
    summary = summarise(sessions, read_events(events))
    summary.update(
        date=time.strftime("%Y-%m-%d"),
        minutes_asked=args.minutes,
        seed=args.seed,
        display="offscreen" if args.offscreen else f"Xvfb {SCREEN}",
        sessions_detail=sessions,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "sessions_detail"}, indent=1))
    return 0 if summary["crashes"] == 0 and summary["hangs"] == 0 else 1


def child(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from bench.soak_driver import drive
    from ostaf_desktop.app import run_app
    from ostaf_desktop.launch_options import parse_launch_options
    from ostaf_desktop.launcher import leave

    options, qt_args = parse_launch_options([])
    leave(run_app(options, qt_args, driver=drive(args.events, args.seed, args.session_s)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--session-minutes", type=float, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=120)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--offscreen", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--session-s", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    args.home = args.home or Path(tempfile.mkdtemp(prefix="ostaf-soak-"))
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
