"""The command line as scripts use it: exit codes, stdout/stderr, files written or not."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from ostaf.cli.main import main, parse_applied
from tests.cli_process import run_cli, start_cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args)


def test_tune_render_info_round_trip(reference_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "look.safetensors"
    tuned = _run(
        *("tune", str(reference_png), "--attribute", "appearance", "--out", str(out)),
        *("--steps", "3", "--name", "Red circle", "--device", "cpu"),
    )
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.strip() == str(out)
    rendered = _run(
        *("render", "--prompt", "a sks vase", "--out", str(tmp_path / "imgs")),
        *("--attribute", f"{out}:0.5", "--seeds", "3,4", "--steps", "3"),
        *("--sampler", "ddim", "--size", "64x64"),
    )
    assert rendered.returncode == 0, rendered.stderr
    lines = rendered.stdout.split()
    assert [Path(p).name for p in lines] == ["00000-3.png", "00001-4.png"]
    assert all(Path(p).is_file() for p in lines)
    info = _run("info", lines[0]).stdout
    assert "Seed: 3" in info and "OSTAF lambda: 0.5" in info and "Sampler: DDIM" in info
    info = _run("info", str(out)).stdout
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
    proc = start_cli(
        [
            *("tune", str(reference_png), "--attribute", "shape", "--out", str(out)),
            *("--steps", "5000", "--device", "cpu"),
        ],
    )
    try:
        proc.wait_for_stderr("tuning", timeout=120)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130, proc.stderr()
        assert "cancelled; nothing was written" in proc.stderr()
    finally:
        proc.close()
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


def test_tune_takes_the_reference_description(
    reference_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.library.attribute_file import read_meta
    from ostaf.method.regions import AttributeKind
    from ostaf.requests import KIND_TUNING

    out = tmp_path / "shape.safetensors"
    common = ("tune", str(reference_png), "--attribute", "shape", "--out", str(out))
    code = main([*common, "--caption", "a red circle", "--device", "cpu"])
    assert code == 2 and "must name the placeholder {token}" in capsys.readouterr().err
    assert not out.exists()
    caption = "a red {token} on a white background"
    code = main([*common, "--caption", caption, "--steps", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    tuning = read_meta(out).tuning
    assert tuning["caption"] == caption and "{token}" not in str(tuning["prompt"])
    kind_rate = KIND_TUNING[AttributeKind.SHAPE].learning_rate
    assert tuning["learning_rate"] == kind_rate  # the kind's own rate is the default
    assert tuning["strength"] == KIND_TUNING[AttributeKind.SHAPE].strength
    assert tuning["prior"] == KIND_TUNING[AttributeKind.SHAPE].prior


def test_tune_takes_a_prior_weight(
    reference_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.library.attribute_file import read_meta

    out = tmp_path / "style.safetensors"
    common = ("tune", str(reference_png), "--attribute", "style", "--out", str(out))
    code = main([*common, "--prior", "12", "--steps", "2", "--device", "cpu"])
    assert code == 2 and "prior-preservation weight 12" in capsys.readouterr().err
    assert not out.exists()
    code = main([*common, "--prior", "0.5", "--steps", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert read_meta(out).tuning["prior"] == 0.5


def test_tune_crops_the_reference_as_given_or_around_the_masked_subject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image, ImageDraw

    from ostaf.images import SUBJECT_FILL
    from ostaf.library.attribute_file import read_meta

    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    picture = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(picture).ellipse((230, 160, 270, 199), fill="red")  # small, in a corner
    picture.save(image)
    painted = Image.new("L", (150, 100), 0)  # the app's canvas may write it scaled
    ImageDraw.Draw(painted).rectangle((115, 80, 134, 99), fill=255)
    painted.save(mask)
    out = tmp_path / "look.safetensors"
    common = ("tune", str(image), "--attribute", "appearance", "--out", str(out))
    quick = ("--steps", "2", "--device", "cpu")

    assert main([*common, "--crop", "mask", *quick]) == 2
    assert "--crop mask frames the subject painted in --mask" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--crop", "40,0,10,100", *quick])
    assert "is empty" in capsys.readouterr().err
    assert not out.exists()

    assert main([*common, "--crop", "mask", "--mask", str(mask), *quick]) == 0
    left, top, right, bottom = read_meta(out).tuning["crop"]
    assert right - left == bottom - top == round(40 / SUBJECT_FILL)
    assert (left + right) / 2 == pytest.approx(250, abs=1.5)
    assert bottom == 200  # moved inside the picture, not cut
    assert read_meta(out).tuning["masked"] is True

    assert main([*common, "--crop", "200,100,300,200", *quick]) == 0
    assert read_meta(out).tuning["crop"] == [200, 100, 300, 200]
    assert read_meta(out).tuning["masked"] is False
