"""Each attribute's own word: the one a new attribute will get, the ticked attributes that
share one (rendering them together is refused), and giving an attribute another word (the
worker re-bases its learned word on the model; the project writes it over its file)."""

from __future__ import annotations

from PySide6.QtCore import QObject

from ostaf.errors import OstafError
from ostaf.method.words import attribute_word, choose_word, shared_word, shared_word_message
from ostaf_desktop.backend import WordChange, WordRequest
from ostaf_desktop.jobs import Job, JobKind, JobState
from ostaf_desktop.observable import Observable, ViewModel
from ostaf_desktop.viewmodels.library import LibraryViewModel
from ostaf_desktop.viewmodels.projects import ProjectsViewModel
from ostaf_desktop.viewmodels.session import SessionViewModel
from ostaf_desktop.worker import JobController


class WordsViewModel(ViewModel):
    """The project's words: the next free one, a clash among the ticked attributes and its
    one-click fix, and renaming an attribute's word."""

    next_word = Observable("")  # what a new attribute of the open project gets
    clash = Observable("")  # the one line that refuses the ticked attributes, or ""
    clash_id = Observable("")  # the attribute the fix gives a word of its own
    clash_fix = Observable("")  # the fix's button text
    renaming = Observable(False)

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
        library.changed.connect(self._on_library_changed)
        session.changed.connect(self._on_session_changed)
        self._update()

    @property
    def demo(self) -> bool:
        """Whether the model in use is the demo model (its words are the world's)."""
        model = self._session.model
        return model.is_demo if model is not None else self._session.uses_demo_model

    def suggestion(self) -> str:
        """A word no attribute of the open project has."""
        return self.next_word

    def free_words(self, count: int) -> list[str]:
        """`count` words no attribute of the open project has, none the same (the first is
        `next_word`)."""
        taken = [row.token for row in self._library.rows]
        chosen: list[str] = []
        for _ in range(count):
            chosen.append(choose_word([*taken, *chosen], self.demo))
        return chosen

    # -- giving an attribute another word ----------------------------------------------------
    def change_word(self, attribute_id: str, word: str) -> Job | None:
        """Give the attribute `word` (checked against the project first); the worker
        re-bases it on the model, then its file is rewritten (its id stays)."""
        row, project = self._library.row(attribute_id), self._projects.current
        if row is None or project is None or self.renaming:
            return None
        try:
            word = project.check_new_word(row.id, word)
        except OstafError as exc:
            self._session.report(exc)
            return None
        self.renaming = True
        self._session.notify(f"Giving '{row.name}' the word '{word}'…")
        request = WordRequest(row.path, word, self._session.model_choice())
        job = Job(JobKind.WORD, request)
        slug = project.slug
        return self._jobs.submit(
            job, on_done=lambda done: self._on_done(done, slug, row.id, row.token)
        )

    def give_own_word(self, attribute_id: str = "") -> Job | None:
        """One click: give the attribute (by default the clash's) the next free word."""
        target = attribute_id or self.clash_id
        return self.change_word(target, self.suggestion()) if target else None

    def _on_done(self, job: Job, slug: str, attribute_id: str, was: str) -> None:
        self.renaming = False
        project = self._projects.current
        if job.state is JobState.DONE and (project is None or project.slug != slug):
            self._session.notify("The project was closed before the new word was ready: unchanged")
        elif job.state is JobState.DONE and project is not None:
            change: WordChange = job.result
            try:
                entry = project.change_word(attribute_id, change.attribute, change.was)
            except OstafError as exc:
                self._session.report(exc)
                return
            self._library.refresh()
            word = attribute_word(entry.meta)
            self._session.notify(
                f"'{entry.meta.name}' is now written {word} in prompts (was {was}); at λ 1 a "
                f"prompt with {word} renders as one with {was} did"
            )
        elif job.state is JobState.FAILED and job.error is not None:
            self._session.report(job.error)

    # -- derived state ---------------------------------------------------------------------
    def _on_library_changed(self, name: str, value: object) -> None:
        if name in ("rows", "applied"):
            self._update()

    def _on_session_changed(self, name: str, value: object) -> None:
        if name in ("model", "settings"):
            self._update()

    def _update(self) -> None:
        rows = self._library.rows
        has_project = self._projects.current is not None
        self.next_word = choose_word((r.token for r in rows), self.demo) if has_project else ""
        ticked = []  # the core's rule, on the files' metadata as last read
        for applied in self._library.applied:
            entry = self._library.entry(applied.id)
            if entry is not None:
                ticked.append((entry, applied.intensity))
        found = shared_word([(entry.meta, lam) for entry, lam in ticked])
        if found is None:
            self.clash, self.clash_id, self.clash_fix = "", "", ""
            return
        first, second, word = found
        self.clash = shared_word_message(first.name, second.name, word)
        self.clash_id = next(entry.id for entry, _ in ticked if entry.meta is second)
        self.clash_fix = f"Give '{second.name}' its own word"
