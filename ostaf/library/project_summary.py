"""What a project browser shows about each project, read without torch: name, attribute count,
dates and a thumbnail (the newest attribute's reference, else the newest reference image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ostaf.library.projects import Problem, Project, ProjectStore


@dataclass
class ProjectSummary:
    """One row of the project browser."""

    name: str
    slug: str
    folder: Path
    attribute_count: int
    created: str
    last_opened: str
    thumbnail: str  # data:image/png;base64,… from the newest attribute, or ""
    reference_image: Path | None  # the newest reference image, when there is one


def summarize_project(project: Project) -> ProjectSummary:
    """The browser row of one project (reads attribute headers only)."""
    entries, _ = project.scan_attributes()
    thumbnail = next(
        (e.meta.reference.thumbnail for e in entries if e.meta.reference.thumbnail), ""
    )
    reference = None
    for record in reversed(project.info.references):
        reference = project.reference_path(record)  # None for a name leading out of it
        if reference is not None:
            break
    return ProjectSummary(
        name=project.name,
        slug=project.slug,
        folder=project.folder,
        attribute_count=len(entries),
        created=project.info.created,
        last_opened=project.info.last_opened,
        thumbnail=thumbnail,
        reference_image=reference,
    )


def summarize_projects(store: ProjectStore) -> tuple[list[ProjectSummary], list[Problem]]:
    """Every readable project, most recently opened first, and the unreadable folders."""
    projects, problems = store.list()
    return [summarize_project(p) for p in projects], problems
