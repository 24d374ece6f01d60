"""`python main.py --self-test` (and `ostaf --self-test`) checks an installation headlessly:
one line on stdout and exit 0, or the failing stage on stderr and exit 1; never Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ostaf.selftest import SelfTestReport
from ostaf_desktop import launcher
from ostaf_desktop.launch_options import parse_launch_options

ROOT = Path(__file__).resolve().parents[2]
# main.py as it runs, but with Qt made unimportable: the self-test must not need it.
RUN_MAIN_WITHOUT_QT = (
    "import runpy, sys\n"
    "sys.modules['PySide6'] = None\n"
    "sys.argv = ['main.py', '--self-test']\n"
    "runpy.run_path('main.py', run_name='__main__')\n"
)


def test_flag_is_parsed_and_qt_arguments_are_left_alone() -> None:
    options, qt_args = parse_launch_options(["--self-test", "-platform", "offscreen"])
    assert options.self_test is True and qt_args == ["-platform", "offscreen"]
    assert parse_launch_options([])[0].self_test is False


@pytest.mark.parametrize("ok", [True, False])
def test_report_goes_to_stdout_or_stderr_with_the_exit_code(
    ok: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = "self-test passed in 1.0 s" if ok else "self-test FAILED while tuning: boom"
    monkeypatch.setattr("ostaf.selftest.run_self_test", lambda: SelfTestReport(ok, summary))
    code = launcher.main(["--self-test"])
    out, err = capsys.readouterr()
    assert code == (0 if ok else launcher.SELF_TEST_FAILED)
    assert (out, err) == ((summary + "\n", "") if ok else ("", summary + "\n"))


@pytest.mark.slow
def test_main_self_test_passes_without_display_or_qt(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env["OSTAF_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-c", RUN_MAIN_WITHOUT_QT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("self-test passed in "), result.stdout
    assert "; rendered " in lines[0] and "with metadata" in lines[0]
    assert not (tmp_path / "home").exists()
