"""What the project browser shows about each project."""

from __future__ import annotations

from pathlib import Path

from ostaf.library.project_summary import summarize_projects
from ostaf.library.projects import ProjectStore
from tests.attribute_files import write_attribute_file


def test_project_summaries(home: Path, tmp_path: Path) -> None:
    store = ProjectStore()
    empty = store.create("Empty")
    full = store.create("Full")
    write_attribute_file(full.attribute_path("02" * 32), created_at="2026-01-02T00:00:00Z")
    write_attribute_file(full.attribute_path("03" * 32), name="Newer", seed=3)
    reference = tmp_path / "ref.png"
    reference.write_bytes(b"not decoded here")
    stored = empty.add_reference(reference)
    empty.release()
    full.release()
    summaries, problems = summarize_projects(store)
    by_name = {s.name: s for s in summaries}
    assert problems == [] and set(by_name) == {"Empty", "Full"}
    assert by_name["Full"].attribute_count == 2
    assert by_name["Full"].thumbnail.startswith("data:image/png;base64,")
    assert by_name["Empty"].attribute_count == 0 and by_name["Empty"].thumbnail == ""
    assert by_name["Empty"].reference_image == stored
