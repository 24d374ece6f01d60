"""The desktop's own JSON files (window state, run history) are read through the typed
schema: a field of the wrong type resets that file to its defaults instead of reaching Qt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ostaf_desktop.run_history import _file, load_run, save_run
from ostaf_desktop.ui_state import ProjectUiState, UiState, load_ui_state, save_ui_state


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
