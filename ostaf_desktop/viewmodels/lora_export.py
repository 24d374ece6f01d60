"""Export as LoRA: the format, the λ baked in and the output file; the writing runs on the
worker thread (it needs torch)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from ostaf.errors import SettingsError
from ostaf.interop.lora_formats import DEFAULT_FORMAT, FORMAT_USE, word_advice, word_path
from ostaf.method.words import attribute_word
from ostaf.render.naming import slug
from ostaf_desktop.backend import LoraRequest, LoraWritten
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.worker import JobController

FORMAT_CHOICES = (
    ("kohya — A1111 / Forge, ComfyUI, InvokeAI (works everywhere)", "kohya"),
    ("diffusers / PEFT — only for diffusers or PEFT code", "diffusers"),
)
SUFFIX = ".safetensors"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def default_lora_path(folder: Path, name: str, fmt: str) -> Path:
    return folder / f"{slug(name, 48)}-lora-{fmt}{SUFFIX}"


class LoraExportViewModel(ViewModel):
    """One attribute's LoRA export: choices, the running job and its outcome."""

    attribute_id = Observable("")
    attribute_name = Observable("")
    format = Observable(DEFAULT_FORMAT)
    format_note = Observable(_sentence(FORMAT_USE[DEFAULT_FORMAT]))
    intensity = Observable(1.0)
    out_path = Observable("")
    overwrite = Observable(False)
    running = Observable(False)
    can_export = Observable(False)
    hint = Observable("")
    word_note = Observable("")  # the attribute's word and how other tools take it
    result_text = Observable("")
    written = Observable[Path | None](None)

    def __init__(
        self,
        session: SessionViewModel,
        jobs: JobController,
        projects: ProjectsViewModel,
        library: LibraryViewModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._jobs = jobs
        self._projects = projects
        self._library = library
        self._job: Job | None = None
        self._suggested = ""
        self.changed.connect(self._on_own_change)

    def prepare(self, attribute_id: str) -> bool:
        """Fill the form for an attribute of the library (unless an export is running)."""
        row, project = self._library.row(attribute_id), self._projects.current
        if row is None or project is None or self.running:
            return False
        self.attribute_id, self.attribute_name = row.id, row.name
        self.intensity = row.default_lambda if row.default_lambda > 0 else 1.0
        self._suggested = str(default_lora_path(project.exports_dir, row.name, self.format))
        self.out_path = self._suggested
        self.result_text, self.written, self.overwrite = "", None, False
        self._update()
        return True

    def export(self) -> Job | None:
        """Write the LoRA on the worker; the outcome lands in result_text."""
        self._update()
        row = self._library.row(self.attribute_id)
        if not self.can_export or row is None:
            return None
        out = Path(self.out_path.strip()).expanduser()
        request = LoraRequest(row.path, out, self.format, float(self.intensity), self.overwrite)
        self.running, self.result_text, self.written = True, "Writing the LoRA…", None
        self._job = self._jobs.submit(Job(JobKind.EXPORT_LORA, request), on_done=self._on_done)
        self._update()
        return self._job

    def _on_done(self, job: Job) -> None:
        self._job = None
        self.running = False
        if job.state is JobState.DONE:
            done: LoraWritten = job.result
            self.written = done.path
            self.result_text = (
                f"Wrote {done.path}: a {done.format} LoRA for {done.target}, "
                f"{done.layers} layer{'s' * (done.layers != 1)}. "
                f"Weight 1 in other tools = λ {done.intensity:g}."
            )
            self._session.notify(f"Exported '{self.attribute_name}' as a LoRA: {done.path}")
        elif job.state is JobState.FAILED and job.error is not None:
            self.result_text = f"Not written: {job.error.message}"
            self._session.report(job.error)
        else:
            self.result_text = "Cancelled: nothing was written"
        self._update()

    def _on_own_change(self, name: str, value: object) -> None:
        if name == "format" and self.out_path and self.out_path == self._suggested:
            # the suggested name follows the format until the user types their own
            folder = Path(self.out_path).parent
            self._suggested = str(default_lora_path(folder, self.attribute_name, str(value)))
            self.out_path = self._suggested
        if name == "format":
            self.format_note = _sentence(FORMAT_USE.get(str(value), ""))
        if name in ("format", "intensity", "out_path", "overwrite") and not self.running:
            # The last outcome was about other choices: it would read as this one's.
            self.result_text, self.written = "", None
        if name in ("format", "intensity", "out_path", "overwrite", "attribute_id", "written"):
            self._update()

    def _word_file(self, out: Path) -> Path | None:
        """Where the attribute's learned word goes beside the LoRA at `out`, if it has one."""
        entry = self._library.entry(self.attribute_id)
        if entry is None or not entry.meta.shifts:
            return None
        try:
            return word_path(out, attribute_word(entry.meta))
        except SettingsError:
            return None  # the export says why, naming the word

    def _update(self) -> None:
        text = self.out_path.strip()
        out = Path(text).expanduser() if text else None
        row = self._library.row(self.attribute_id)
        # Only the embedding's name is shown: it is the word's, whatever the LoRA's folder.
        shown = self._word_file(out or Path(f"lora{SUFFIX}"))
        self.word_note = f"{word_advice(row.token, shown)}." if row is not None else ""
        word_file = self._word_file(out) if out is not None else None
        lam = float(self.intensity)
        if self.running:
            hint, ok = "Writing…", False
        elif self._library.row(self.attribute_id) is None:
            hint, ok = "Choose an attribute in the library first", False
        elif out is None or out.suffix != SUFFIX:
            hint, ok = f"The LoRA file name must end in {SUFFIX}", False
        elif not 0 < lam <= 2:
            hint, ok = "λ must be above 0 and at most 2 (a LoRA at λ 0 changes nothing)", False
        elif word_file == out:
            hint, ok = (
                f"{out.name} is where the attribute's word goes: name the LoRA otherwise",
                False,
            )
        elif out.exists() and not self.overwrite and self.written is not None:
            # Just written: not a problem to report next to the success.
            hint, ok = f"To write {out.name} again, tick Replace or choose another name", False
        elif word_file is not None and word_file.exists() and not self.overwrite:
            hint, ok = (
                f"{word_file.name} (the attribute's word) already exists there: choose another "
                "folder or tick Replace",
                False,
            )
        elif out.exists() and not self.overwrite:
            hint, ok = f"{out.name} already exists: choose another name or tick Replace", False
        else:
            hint, ok = f"Weight 1 in other tools will give this attribute at λ {lam:g}", True
        self.hint, self.can_export = hint, ok
