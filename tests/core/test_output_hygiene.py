"""What the app writes and prints: files get the umask's normal mode (a replaced file keeps
its own), control characters from files are shown escaped, and inputs that used to hang, read
forever, crash or be misread are refused in one line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ostaf.cli.main import main
from ostaf.cli.terminal import json_text, printable
from ostaf.errors import ProjectError, SettingsError
from ostaf.interop.lora_export import export_lora
from ostaf.interop.pngmeta import write_png
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.attribute_file import base_model_warning, save_attribute
from ostaf.library.projects import ProjectStore
from ostaf.models.base_model import BaseModel
from ostaf.requests import parse_seeds
from ostaf.settings import Settings, save_settings
from tests.attribute_files import write_attribute_file
from tests.core.attribute_factory import make_attribute


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_written_files_get_the_umask_mode(
    demo: BaseModel, home: Path, tmp_path: Path, umask: int
) -> None:
    """Files meant to be shared were 0600 whatever the umask (the temporary file's mode)."""
    shared = 0o666 & ~umask
    attribute = make_attribute(demo, seed=4)
    written = [
        save_attribute(tmp_path / "a.safetensors", attribute),
        write_png(tmp_path / "r.png", Image.new("RGB", (8, 8)), "p\nSteps: 1", {}),
        export_lora(attribute, tmp_path / "l.safetensors", "kohya", None).path,
    ]
    project = ProjectStore().create("Modes")
    written.append(project.import_attribute(written[0]).entry.path)
    written.append(project.folder / "project.json")
    written.append(project.export_attribute(written[-2].stem, tmp_path / "out"))
    project.release()
    save_settings(Settings())
    written.append(home / "settings.json")
    assert {p.name: _mode(p) for p in written} == {p.name: shared for p in written}


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_replaced_file_keeps_its_mode(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write_bytes(target, b"new")
    assert (target.read_bytes(), _mode(target)) == (b"new", 0o640)
    project = ProjectStore().create("Force")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.release()
    shared = tmp_path / "shared.safetensors"
    shared.write_bytes(b"an older export")
    shared.chmod(0o644)
    args = ["library", "export", "--project", "Force", entry.id, "--out", str(shared), "--force"]
    assert main(args) == 0
    assert _mode(shared) == 0o644 and shared.read_bytes() == entry.path.read_bytes()


def test_control_characters_from_files_are_shown_escaped(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "crafted.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a cat\x1b]0;pwned\x07\x1b[2J\r\nSteps: 20, Seed: 1\u202e")
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    assert main(["info", str(png)]) == 0
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert "\u202e" not in shown
    assert shown.splitlines() == [
        "a cat\\x1b]0;pwned\\x07\\x1b[2J\\x0d",
        "Steps: 20, Seed: 1\\u202e",
    ]

    # A name holding them is refused where it is read (the schema holds the writers' rule);
    # notes may hold line breaks, and whatever else they hold is shown escaped.
    ProjectStore().create("Names").release()
    forged = "evil\r\n0000000000000000  style  λ 1  forged\x1b[31m\x9b"
    named = write_attribute_file(tmp_path / "n.safetensors", name=forged)
    assert main(["library", "import", "--project", "Names", str(named)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "the name holds the control or invisible character U+000D" in line
    noted = write_attribute_file(tmp_path / "o.safetensors", notes=forged)
    assert main(["library", "import", "--project", "Names", str(noted)]) == 0
    (listed,) = capsys.readouterr().out.splitlines()
    assert main(["library", "show", "--project", "Names", listed.split()[1]]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "notes:         evil\\x0d\\x0a0000000000000000" in "\n".join(shown)
    assert not any(ch in line for line in shown for ch in "\x1b\x9b\r")
    assert main(["library", "list", "--project", "Names", "--json"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x9b" not in text and "\\u009b" in text


def test_the_escaping_helpers() -> None:
    assert printable("tab\there\x00\x7f é ✓") == "tab\\x09here\\x00\\x7f é ✓"
    assert printable("a\nb\rc", keep_newlines=True) == "a\nb\\x0dc"
    assert json_text({"n": "\x1b\u2028"}) == '{\n  "n": "\\u001b\\u2028"\n}'
    # a lone surrogate (an undecodable byte of a file name) no encoder writes: escaped too
    assert printable("name\udcff.png") == "name\\udcff.png"
    assert json_text(["\ud800"]) == '[\n  "\\ud800"\n]'


def test_demo_model_refuses_a_file_and_fills_an_empty_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "model.bin"
    existing.write_bytes(b"mine")
    assert main(["demo-model", "--out", str(existing)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is a file" in lines[0] and existing.read_bytes() == b"mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["demo-model", "--out", str(empty)]) == 0
    assert (empty / "model_index.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_prompt_files_that_never_end_or_never_start_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "device":
        source = Path("/dev/zero")
        if not source.exists():
            pytest.skip("no /dev/zero")
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs")
        source = tmp_path / "prompts.fifo"
        os.mkfifo(source)  # nobody ever writes to it: reading would wait forever
    else:
        source = tmp_path
    args = ["batch", "--prompts", str(source), "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: prompt file {source}")
    assert "is not a regular file (a folder, a pipe or a device)" in line


def test_a_huge_regular_prompt_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(64 << 20)  # sparse: 64 MB claimed, nothing read past the limit
    args = ["batch", "--prompts", str(big), "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert main(args) == 2 and "larger than 4 MB" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["١٢", "１２", "1,٣", "²"])
def test_only_ascii_digits_are_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    with pytest.raises(SettingsError, match="not a whole number"):
        parse_seeds(text)
    assert main(["render", "--prompt", "x", "--out", str(tmp_path), "--seeds", text]) == 2
    with pytest.raises(SystemExit) as refused:
        main(["render", "--prompt", "x", "--out", str(tmp_path), "--steps", text])
    assert refused.value.code == 2 and "digits 0-9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["batch", "--prompt", "x", "--out", str(tmp_path), "--guidance", "nan"])


def test_one_name_limit_everywhere(home: Path, tmp_path: Path) -> None:
    project = ProjectStore().create("Long")
    entry = project.import_attribute(write_attribute_file(tmp_path / "a.safetensors")).entry
    project.update_attribute(entry.id, name="n" * 120)
    with pytest.raises(ProjectError, match="keep it to 120 at most"):
        project.update_attribute(entry.id, name="n" * 121)
    project.release()


def test_the_other_base_model_warning_says_what_differs() -> None:
    same = base_model_warning("Look", "SD 1.5", "SD 1.5")
    assert "another version of 'SD 1.5'" in same and "not on" not in same
    other = base_model_warning("Look", "SD 1.5", "Dreamlike")
    assert "tuned on 'SD 1.5', this is 'Dreamlike'" in other


def test_a_warning_has_a_line_of_its_own(
    demo: BaseModel, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The warning was written on the progress bar's line ('…it/s]warning: …')."""
    attribute = make_attribute(demo, seed=5, name="Other")
    attribute.meta.base_model.fingerprint = "another"
    path = save_attribute(tmp_path / "o.safetensors", attribute)
    args = ["render", "--prompt", "a red circle", "--out", str(tmp_path / "r"), "--seeds", "1"]
    args += ["--steps", "2", "--size", "64x64", "--device", "cpu", "--attribute", f"{path}:1"]
    assert main(args) == 0
    err = capfd.readouterr().err
    (line,) = [line for line in err.split("\n") if "warning:" in line]
    assert line.split("\r")[-1].startswith("warning: 'Other' was tuned on another version of")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_info_reads_a_png_record_through_its_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], json_flag: list[str]
) -> None:
    """A lone surrogate in the `ostaf` chunk survived json.loads and crashed the printing."""
    record = '{"prompt": "\\ud800 x", "seed": 1}'
    alone = tmp_path / "alone.png"
    info = PngImagePlugin.PngInfo()
    info.add_itxt("ostaf", record)
    Image.new("RGB", (8, 8)).save(alone, pnginfo=info)
    assert main(["info", str(alone), *json_flag]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {alone} carries no generation parameters (the OSTAF record")
    assert "not valid Unicode (a lone surrogate" in line
    info.add_text("parameters", "a cat\nSteps: 2, Seed: 1")
    both = tmp_path / "both.png"
    Image.new("RGB", (8, 8)).save(both, pnginfo=info)
    assert main(["info", str(both), *json_flag]) == 0
    captured = capsys.readouterr()
    assert "Steps: 2, Seed: 1" in captured.out and "\ud800" not in captured.out
    assert captured.err.startswith("warning: the OSTAF record is damaged (")


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_listings_print_on_any_stdout_encoding(home: Path, tmp_path: Path, encoding: str) -> None:
    """`library list/show/import/edit` print λ: on a cp1252 stdout (what a redirected stdout
    gets on Windows) or an ASCII one they ended in UnicodeEncodeError. Characters the
    encoding cannot hold are written as escapes now; the exit code is 0."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONIOENCODING": encoding, "PYTHONPATH": str(root)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ostaf", "library", *args, "--project", "Enc"],
            env=env, cwd=root, capture_output=True, timeout=120, encoding=encoding,
        )  # fmt: skip

    ProjectStore().create("Enc").release()
    source = write_attribute_file(tmp_path / "a.safetensors", name="Glaze 青")
    imported = cli("import", str(source))
    assert imported.returncode == 0, imported.stderr
    entry_id = imported.stdout.split()[1]
    for args in (["list"], ["show", entry_id], ["edit", entry_id, "--lambda", "0.5"]):
        done = cli(*args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert "\\u03bb" in done.stdout and "Glaze \\u9752" in done.stdout
        done.stdout.encode(encoding)  # nothing the encoding cannot hold reached it
    helped = subprocess.run(
        [sys.executable, "-m", "ostaf", "library", "edit", "--help"],
        env=env, cwd=root, capture_output=True, timeout=120, encoding=encoding,
    )  # fmt: skip
    assert helped.returncode == 0 and "default \\u03bb" in helped.stdout


def test_one_image_limit_for_render_and_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`render --seeds "0-10000,"×30` took 300,030 seeds (batch refuses over 10,000 cells);
    `batch --seeds ""` rendered seed 0 where `render --seeds ""` refused."""
    from ostaf.requests import RenderSettings

    many = "0-10000," * 30
    with pytest.raises(SettingsError, match="more than 10000 seeds"):
        parse_seeds(many)
    assert len(parse_seeds("0-9999")) == 10_000
    with pytest.raises(SettingsError, match="at most 10000"):
        RenderSettings("x", seeds=list(range(10_001))).validate()
    out = str(tmp_path / "o")
    for command in (["render", "--prompt", "x", "--out", out], ["batch", "--prompt", "x"]):
        assert main([*command, "--out", out, "--seeds", many]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line == "error: more than 10000 seeds; give fewer"
        assert main([*command, "--out", out, "--seeds", ""]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: no seeds given")
    assert not (tmp_path / "o").exists()


def test_demo_model_on_a_full_disk_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """copytree gathers every file's error: the line ended in a Python list of tuples."""
    import errno
    import shutil

    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    assert main(["demo-model", "--out", str(tmp_path / "demo")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: cannot write the demo model to {tmp_path / 'demo'}: the disk is full; "
        "free some space and try again"
    )
    assert list(tmp_path.iterdir()) == []  # the half-made copy is gone
    from ostaf.library.atomic import describe_os_error

    gathered = shutil.Error([("a", "b", "[Errno 13] Permission denied: 'b'")] * 3)
    assert describe_os_error(gathered) == "[Errno 13] Permission denied: 'b' (and 2 more files)"
