"""The desktop's own JSON files (window state, run history) are read through the capped
regular-file reader and the typed schema: a pipe, a huge file or a field of the wrong type
resets that file to its defaults instead of hanging the app or reaching Qt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ostaf_desktop.run_history import _file, load_run, save_run
from ostaf_desktop.ui_state import (
    ProjectUiState,
    UiState,
    load_ui_state,
    save_ui_state,
    ui_state_file,
)
from tests.fifo import fifo_at, finishes, needs_fifo


def test_ui_state_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "desktop.json"
    state = UiState(geometry="AAA", splitters={"rows": "BBB"}, demo_hint_dismissed=True)
    state.projects["p"] = ProjectUiState(
        reference="/pictures/r.png",
        crop=[1, 2, 30, 40],
        applied={"id": 0.5},
        prompt="a star",
        results=["b.png", "a.png"],
    )
    save_ui_state(state, path)
    assert load_ui_state(path) == state


@pytest.mark.parametrize(
    "text",
    [
        '{"geometry": 5}',
        '{"demo_hint_dismissed": "yes"}',
        '{"projects": [1]}',
        '{"projects": {"p": {"crop": "abc"}}}',
        '{"projects": {"p": {"applied": {"id": "high"}}}}',
        '{"projects": {"p": {"results": [3]}}}',
        "[]",
        "{",
    ],
)
def test_ui_state_with_a_wrong_field_gives_the_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "desktop.json"
    path.write_text(text, encoding="utf-8")
    assert load_ui_state(path) == UiState()


def test_ui_state_ignores_keys_it_does_not_know(tmp_path: Path) -> None:
    path = tmp_path / "desktop.json"
    path.write_text(json.dumps({"geometry": "G", "future": {"x": 1}}), encoding="utf-8")
    assert load_ui_state(path) == UiState(geometry="G")


def test_run_history_round_trip_and_wrong_types(home: Path) -> None:
    save_run("attr", [0.5, 0.25], [], 3.0, preview_prompt="a sks heart")
    record = load_run("attr")
    assert record is not None
    assert record.losses == [0.5, 0.25] and record.preview_prompt == "a sks heart"
    for bad in ('{"losses": ["x"]}', '{"losses": [], "previews": [1]}', '{"seconds": "3"}'):
        _file("attr").write_text(bad, encoding="utf-8")
        assert load_run("attr") is None, bad


@needs_fifo
def test_a_desktop_json_that_never_ends_gives_the_defaults(home: Path) -> None:
    """A FIFO with no writer in place of desktop.json kept the app from ever starting."""
    with fifo_at(ui_state_file()):
        done, result = finishes(load_ui_state)
    assert done and result == [UiState()]


def test_an_oversized_desktop_json_gives_the_defaults(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = ui_state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(64 << 20)  # sparse: claimed, never read past the limit
    assert load_ui_state() == UiState()
    assert "larger than 4 MB" in caplog.text


@needs_fifo
def test_a_run_history_that_never_ends_or_is_huge_is_ignored(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fifo_at(_file("piped")):
        done, result = finishes(lambda: load_run("piped"))
    assert done and result == [None]
    with _file("huge").open("wb") as handle:
        handle.truncate(64 << 20)
    assert load_run("huge") is None and "larger than 16 MB" in caplog.text
    assert load_run("absent") is None


def test_a_thumbnail_of_too_many_pixels_is_not_decoded(qapp: object) -> None:
    """An attribute's 8000×8000 thumbnail (243 kB of PNG) took 400 MB and 2 s to decode
    in the library panel, once per attribute; the header is checked first now."""
    import base64
    import io

    from PIL import Image

    from ostaf.images import thumbnail_data_url
    from ostaf_desktop.qt_images import qimage_from_data_url

    buffer = io.BytesIO()
    Image.new("1", (8000, 8000)).save(buffer, format="PNG")
    huge = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    assert qimage_from_data_url(huge).isNull()
    small = qimage_from_data_url(thumbnail_data_url(Image.new("RGB", (40, 20), (0, 0, 255))))
    assert (small.width(), small.height()) == (40, 20)
    assert qimage_from_data_url("data:image/png;base64,%%%").isNull()


@needs_fifo
def test_a_rendered_image_that_is_a_pipe_is_not_waited_for(tmp_path: Path) -> None:
    """The results strip reads the newest PNGs of the project's exports folder at start.
    Qt opens the file without letting go of Python's lock: the check runs in a process of
    its own, so that a reader that waits fails the test instead of hanging it."""
    import os
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; from PySide6.QtGui import QGuiApplication; "
        "from ostaf_desktop.qt_images import read_thumbnail; app = QGuiApplication([]); "
        "print(read_thumbnail(Path(sys.argv[1]), 64).isNull())"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"}
    with fifo_at(tmp_path / "00001-1.png") as pipe:
        try:
            done = subprocess.run(
                [sys.executable, "-c", probe, str(pipe)],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("reading a pipe in the exports folder waited for a writer")
    assert done.stdout.strip() == "True", done.stderr
