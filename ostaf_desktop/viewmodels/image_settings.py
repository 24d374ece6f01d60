"""Re-open a rendered image's settings: its PNG metadata fills the Render panel (prompt,
negative, seed, steps, sampler, size, guidance) and ticks the attributes it used, found in
the open project's library by content."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import OstafError
from ostaf.library.projects import Project
from ostaf.render.recall import Recall, RecalledAttribute, recall_image
from ostaf_desktop.observable import ViewModel
from ostaf_desktop.viewmodels.library import AppliedEntry, LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.rendering import MAX_SEED, NATIVE, RenderViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel


class ImageSettingsViewModel(ViewModel):
    """Fills the Render panel from a PNG rendered by OSTAF (or by A1111-compatible tools)."""

    def __init__(
        self,
        session: SessionViewModel,
        projects: ProjectsViewModel,
        library: LibraryViewModel,
        rendering: RenderViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._projects = projects
        self._library = library
        self._rendering = rendering

    def open(self, path: Path) -> bool:
        """Apply the settings of `path`; False (error in the banner) when it has none."""
        project = self._projects.current
        try:
            recalled = recall_image(path, [project] if project is not None else [])
        except OstafError as exc:
            self._session.report(exc)
            return False
        notes = self._fill_render_panel(recalled)
        applied, missing = self._attributes(recalled, project)
        self._library.applied = applied
        notes = [*recalled.resets, *missing, *notes]  # resets: values the renderer refuses
        if not recalled.complete:
            notes.extend(recalled.warnings)
        ticked = f"{len(applied)} attribute{'s' if len(applied) != 1 else ''} ticked"
        if missing:
            ticked += f", {len(missing)} not found"
        summary = f"Opened the settings of {Path(path).name} ({ticked})"
        if notes:
            text = summary + ".\n\n" + "\n".join(f"• {n}" for n in notes)
            self._session.inform("Image settings", text, summary)
        else:
            self._session.notify(summary)
        return True

    def _fill_render_panel(self, recalled: Recall) -> list[str]:
        settings, r, notes = recalled.settings, self._rendering, []
        r.prompt = settings.prompt
        r.negative_prompt = settings.negative_prompt
        seed = settings.seeds[0] if settings.seeds else 0
        if seed > MAX_SEED:
            notes.append(f"seed {seed} is larger than this app takes; using {seed % MAX_SEED}")
            seed %= MAX_SEED
        r.seed, r.steps, r.sampler = seed, settings.steps, settings.sampler
        r.schedule = settings.schedule
        model = self._session.model
        if settings.guidance is not None:
            r.guidance = settings.guidance
        elif model is not None:  # A1111 parameters without a usable CFG scale
            r.guidance = model.guidance
        r.size = self._size_value(settings.width, settings.height)
        if recalled.model_name and model is not None and recalled.model_name != model.name:
            notes.append(
                f"it was rendered with the model '{recalled.model_name}'; the loaded model is "
                f"'{model.name}', so the picture will differ"
            )
        return notes

    def _size_value(self, width: int | None, height: int | None) -> str:
        """The size choice for width×height, adding it to the choices when it is new."""
        model = self._session.model
        if width is None or height is None:
            return NATIVE
        if model is not None and width == height == model.resolution:
            return NATIVE
        value = f"{width}x{height}"
        options = self._rendering.size_options
        if value not in {v for _, v in options}:
            self._rendering.size_options = (*options, (f"From image {width}×{height}", value))
        return value

    def _attributes(
        self, recalled: Recall, project: Project | None
    ) -> tuple[tuple[AppliedEntry, ...], list[str]]:
        applied: list[AppliedEntry] = []
        missing: list[str] = []
        for item in recalled.attributes:
            row = self._library.row(item.path.stem) if item.path is not None else None
            if row is not None:
                applied.append(AppliedEntry(row.id, row.path, row.name, item.intensity))
            else:
                missing.append(self._where(item, project))
        return tuple(applied), missing

    def _where(self, item: RecalledAttribute, project: Project | None) -> str:
        """Why an attribute could not be ticked, and what to do about it."""
        what = f"'{item.name or item.content_hash[:8]}' (λ {item.intensity:g})"
        if item.trashed is not None:
            return f"{what} is in this project's trash: restore it (Attribute → Trash…)"
        others, _ = self._projects.store.list()
        for other in others:
            if (
                other.slug != (project.slug if project else "")
                and other.attribute_path(item.content_hash).is_file()
            ):
                return (
                    f"{what} is in the project '{other.name}': import it "
                    "(Attribute → Import from another project…) and open the settings again"
                )
        return (
            f"{what} is in no project library: import its .safetensors file "
            "(Attribute → Import attribute files…)"
        )
