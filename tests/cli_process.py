"""`python -m ostaf …` in a process of its own, without paying torch's and diffusers' imports.

A real interpreter start costs ~6.5 s of CPU on the shared 2-core machine, mostly importing
torch and diffusers. multiprocessing's forkserver imports them once, in a server process that
never runs torch code (so no thread pools exist when it forks); every command is then a fork
of it: its own PID, signals, environment, working folder, stdout, stderr and exit code, and
the same code path as `python -m ostaf` (ostaf/__main__.py calls `main()`). Tests of the
interpreter itself (imports, start-up, packaging) still start a real one. POSIX only, as
the SIGKILL tests that use it are.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from pathlib import Path

PRELOAD = [
    "ostaf.cli.main",
    "ostaf.cli.batch",
    "ostaf.cli.library",
    "ostaf.service",
    "ostaf.models.base_model",
    "ostaf.method.tuning",
    "ostaf.render.rendering",
    "ostaf.render.batch",
]
ROOT = Path(__file__).resolve().parents[1]  # the checkout, where `python -m ostaf` runs
_context: ForkServerContext | None = None


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _context = context
    return _context


def _command(args: Sequence[str], env: Mapping[str, str], cwd: str, out: str, err: str) -> None:
    """The child: what `python -m ostaf ARGS` does, with the given environment and output."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stderr.reconfigure(line_buffering=True)
    from ostaf.cli.main import main

    raise SystemExit(main(list(args)))


@dataclass
class CliProcess:
    """A running command; `stdout`/`stderr` read what it wrote so far."""

    process: multiprocessing.process.BaseProcess
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def stdout(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def send_signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        """The exit code (negative: killed by that signal); raises TimeoutError."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            raise TimeoutError(f"ostaf command still running after {timeout} s")
        return self.process.exitcode

    def close(self) -> None:
        """Remove the files that hold its output."""
        shutil.rmtree(self.out.parent, ignore_errors=True)

    def wait_for_stderr(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() > deadline or not self.process.is_alive():
                raise TimeoutError(f"{text!r} did not appear; stderr: {self.stderr()[-2000:]}")
            time.sleep(0.02)


def start_cli(
    args: Sequence[str], cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> CliProcess:
    """Start `python -m ostaf ARGS` (env: the whole environment, default this one's)."""
    folder = Path(tempfile.mkdtemp(prefix="ostaf-cli-"))
    out, err = folder / "stdout", folder / "stderr"
    process = _forkserver().Process(
        target=_command,
        args=(list(args), dict(os.environ if env is None else env), str(cwd), str(out), str(err)),
        daemon=True,
    )
    process.start()
    return CliProcess(process, out, err)


def run_cli(
    args: Sequence[str],
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ostaf ARGS` to the end, like subprocess.run(…, capture_output=True)."""
    started = start_cli(args, cwd, env)
    try:
        code = started.wait(timeout)
        return subprocess.CompletedProcess(
            ["python", "-m", "ostaf", *args], code, started.stdout(), started.stderr()
        )
    finally:
        started.close()
