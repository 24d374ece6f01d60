"""The command line as scripts use it: exit codes, stdout/stderr, files written or not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ostaf.cli.main import main, parse_applied

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ostaf", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,  # type: ignore[call-overload]
    )


def test_tune_render_info_round_trip(
    reference_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `tune` runs as scripts run it, in a process of its own; the other commands run here
    # through the same entry point (each process start costs torch's and diffusers' imports).
    out = tmp_path / "look.safetensors"
    tuned = _run(
        *("tune", str(reference_png), "--attribute", "appearance", "--out", str(out)),
        *("--steps", "3", "--name", "Red circle", "--device", "cpu"),
    )
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.strip() == str(out)
    code = main(
        [
            *("render", "--prompt", "a sks vase", "--out", str(tmp_path / "imgs")),
            *("--attribute", f"{out}:0.5", "--seeds", "3,4", "--steps", "3"),
            *("--sampler", "ddim", "--size", "64x64"),
        ]
    )
    rendered = capsys.readouterr()
    assert code == 0, rendered.err
    lines = rendered.out.split()
    assert [Path(p).name for p in lines] == ["00000-3.png", "00001-4.png"]
    assert all(Path(p).is_file() for p in lines)
    assert main(["info", lines[0]]) == 0
    info = capsys.readouterr().out
    assert "Seed: 3" in info and "OSTAF lambda: 0.5" in info and "Sampler: DDIM" in info
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "name:          Red circle" in info and "kind:          appearance" in info


def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    code = main(
        [
            "tune",
            str(broken),
            "--attribute",
            "style",
            "--out",
            str(tmp_path / "x.safetensors"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: reference image") and "broken.jpg" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "x.safetensors").exists()
    code = main(["render", "--prompt", "x", "--out", str(tmp_path), "--seeds", "a,b"])
    assert code == 2 and "seed 'a' is not a whole number" in capsys.readouterr().err
    code = main(
        [
            "render",
            "--prompt",
            "x",
            "--out",
            str(tmp_path),
            "--attribute",
            str(tmp_path / "none.safetensors"),
        ]
    )
    assert code == 2 and "no such attribute file" in capsys.readouterr().err
    code = main(
        [
            "tune",
            str(broken),
            "--attribute",
            "shape",
            "--out",
            str(tmp_path / "x.safetensors"),
            "--model",
            str(tmp_path / "nope"),
        ]
    )
    assert code == 2 and "nope does not exist" in capsys.readouterr().err


def test_ctrl_c_exits_130_and_leaves_no_file(reference_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "interrupted.safetensors"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ostaf",
            "tune",
            str(reference_png),
            "--attribute",
            "shape",
            "--out",
            str(out),
            "--steps",
            "5000",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    buffer = ""
    deadline = time.time() + 120
    while "tuning" not in buffer and time.time() < deadline:
        buffer += proc.stderr.read(1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled; nothing was written" in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [reference_png.name]


def test_demo_model_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-model", "--out", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "model_index.json").is_file()
    assert main(["demo-model", "--out", str(tmp_path / "demo")]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_attribute_argument_parsing(tmp_path: Path) -> None:
    assert parse_applied("a/b.safetensors:1.5").intensity == 1.5
    assert parse_applied("C:/x/b.safetensors:0").path == Path("C:/x/b.safetensors")
