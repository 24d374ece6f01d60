"""Desktop fixtures: a scriptable fake backend, the main window over it, and modal dialogs
patched so that nothing ever blocks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf.decompose_request import DecomposeJob
from ostaf.errors import Cancelled, OstafError
from ostaf.interop.pngmeta import a1111_parameters, write_png
from ostaf.library.atomic import atomic_write_bytes, atomic_write_text
from ostaf.library.attribute_meta import read_meta
from ostaf.method.tuning_checkpoint import discard, read_sidecar, sidecar
from ostaf.progress import CancelToken, Progress, ProgressCallback
from ostaf.render.batch_plan import BatchJob, plan_batch
from ostaf.requests import ModelChoice, RenderJob, RenderSettings, TuneJob
from ostaf_desktop.backend import (
    BatchResult,
    LearnedAll,
    LoraRequest,
    LoraWritten,
    ModelInfo,
    RenderedImage,
    TunedAttribute,
    WordChange,
    WordRequest,
    write_lora,
)
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.widgets.main_window import MainWindow
from tests.attribute_files import write_attribute_file


@dataclass
class Call:
    kind: str  # "load", "tune", "learn_all", "preview", "render", "batch", "lora" or "word"
    request: Any
    cancel: CancelToken


@dataclass
class FakeBackend:
    """Answers like the core, instantly or as slowly as a test asks; records every call."""

    calls: list[Call] = field(default_factory=list)
    step_delay_s: float = 0.0
    fail_render: OstafError | None = None
    render_warnings: list[str] = field(default_factory=list)  # what every image is warned of
    fail_load: OstafError | None = None
    fail_batch: OstafError | None = None  # raised after `fail_batch_after` images (a full disk)
    fail_batch_after: int = 0
    fail_tune: Exception | None = None  # raised once, after step `fail_tune_at` (state kept)
    fail_tune_at: int = 0
    tune_content: int | None = None  # the same factors for every run (a deterministic tune)
    fail_word: OstafError | None = None  # what giving an attribute another word raises
    gate: threading.Event = field(default_factory=threading.Event)
    load_gate: threading.Event = field(default_factory=threading.Event)  # clear: loading waits
    info: ModelInfo = field(
        default_factory=lambda: ModelInfo("Fake model", 64, "cpu float32", ("cpu",), True)
    )

    def __post_init__(self) -> None:
        self.gate.set()
        self.load_gate.set()

    def of_kind(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    def load_model(
        self, choice: ModelChoice, progress: ProgressCallback, cancel: CancelToken
    ) -> ModelInfo:
        self.calls.append(Call("load", choice, cancel))
        progress(Progress("loading", 1, 1, message="Loading the fake model…"))
        while not self.load_gate.wait(0.01):
            cancel.check()
        if self.fail_load is not None:
            raise self.fail_load
        return self.info

    def tune(self, job: TuneJob, progress: ProgressCallback, cancel: CancelToken) -> TunedAttribute:
        """Like the service: with a checkpoint, every step is saved, a saved run resumes after
        its last step, and the state goes on success and cancel but stays on failure."""
        self.calls.append(Call("tune", job, cancel))
        total = job.settings.steps
        saved = read_sidecar(job.checkpoint) if job.checkpoint is not None else None
        losses: list[float] = list(saved["losses"]) if saved is not None else []
        try:
            for step in range(len(losses) + 1, total + 1):
                cancel.check()
                self._wait(cancel)
                loss = 1.0 / step
                losses.append(loss)
                if job.checkpoint is not None:
                    save_fake_state(job, losses)
                preview = None
                if job.settings.preview_every and step % job.settings.preview_every == 0:
                    preview = Image.new("RGB", (64, 64), (step * 10 % 255, 90, 160))
                elapsed = step * 0.1
                progress(Progress("tuning", step, total, loss, elapsed, preview=preview))
                if self.fail_tune is not None and step == self.fail_tune_at:
                    failure, self.fail_tune = self.fail_tune, None
                    raise failure
        except Cancelled:
            if job.checkpoint is not None:
                discard(job.checkpoint)
            raise
        content = len(self.calls) if self.tune_content is None else self.tune_content
        write_attribute_file(
            job.out,
            name=job.name,
            kind=job.settings.kind,
            seed=content,
            steps=total,
            word=job.settings.token,
        )
        if job.checkpoint is not None:
            discard(job.checkpoint)
        return TunedAttribute(job.out, losses, total * 0.1)

    def learn_all(
        self, job: DecomposeJob, progress: ProgressCallback, cancel: CancelToken
    ) -> LearnedAll:
        """Like the service: one loop of the settings' steps, checkpointed and resumed as
        `tune` is, then three files (one per kind, each with its own word); nothing written
        when it is cancelled or fails."""
        self.calls.append(Call("learn_all", job, cancel))
        total = job.settings.steps
        saved = read_sidecar(job.checkpoint) if job.checkpoint is not None else None
        losses: list[float] = list(saved["losses"]) if saved is not None else []
        try:
            for step in range(len(losses) + 1, total + 1):
                cancel.check()
                self._wait(cancel)
                losses.append(1.0 / step)
                if job.checkpoint is not None:
                    save_fake_learn_all_state(job, losses)
                progress(Progress("tuning", step, total, 1.0 / step, step * 0.1))
                if self.fail_tune is not None and step == self.fail_tune_at:
                    failure, self.fail_tune = self.fail_tune, None
                    raise failure
        except Cancelled:
            if job.checkpoint is not None:
                discard(job.checkpoint)
            raise
        for index, (kind, out) in enumerate(job.outs.items()):
            write_attribute_file(
                out,
                name=job.names.get(kind) or f"{kind} of {job.image.stem}",
                kind=kind,
                seed=len(self.calls) * 10 + index,
                steps=total,
                word=job.settings.words[kind],
            )
        if job.checkpoint is not None:
            discard(job.checkpoint)
        return LearnedAll(dict(job.outs), losses, total * 0.1)

    def render(
        self, job: RenderJob, progress: ProgressCallback, cancel: CancelToken
    ) -> list[RenderedImage]:
        self.calls.append(Call("render" if job.out_dir else "preview", job, cancel))
        settings = job.settings
        for step in range(1, settings.steps + 1):
            cancel.check()
            self._wait(cancel)
            progress(Progress("rendering", step, settings.steps))
        if self.fail_render is not None:
            raise self.fail_render
        images = []
        for seed in settings.seeds:
            image = Image.new("RGB", (64, 64), (seed * 40 % 255, 120, 60))
            parameters, record = fake_metadata(settings, seed, self.info)
            path = None
            if job.out_dir is not None:
                target = job.out_dir / f"{len(images):05d}-{seed}.png"
                path = write_png(target, image, parameters, record)
            images.append(RenderedImage(image, seed, parameters, path, list(self.render_warnings)))
        return images

    def batch(self, job: BatchJob, progress: ProgressCallback, cancel: CancelToken) -> BatchResult:
        """Like the core's batch: files already there are skipped, the rest written in order."""
        self.calls.append(Call("batch", job, cancel))
        request = job.request
        paths = {c.path for combination in request.combinations for c in combination}
        plan = plan_batch(request, {path: read_meta(path) for path in paths})
        out = request.out_dir
        done = [c for c in plan.cells if (out / c.file_name).is_file()]
        todo = [c for c in plan.cells if c not in done]
        total = max(1, len(todo) * request.steps)
        written: list[Path] = []
        for number, cell in enumerate(todo):
            if self.fail_batch is not None and number == self.fail_batch_after:
                raise self.fail_batch
            for step in range(1, request.steps + 1):
                cancel.check()
                self._wait(cancel)
                at = number * request.steps + step
                progress(Progress("batch", at, total, elapsed_s=at * 0.1, eta_s=(total - at) * 0.1))
            image = Image.new("RGB", (64, 64), (cell.seed * 40 % 255, 90, 60))
            settings = request.render_settings(cell.prompt, [cell.seed])
            settings.attributes = list(cell.variant.applied)
            parameters, record = fake_metadata(settings, cell.seed, self.info)
            written.append(write_png(out / cell.file_name, image, parameters, record))
        sheet = None
        if plan.sheet_name:
            sheet = write_png(out / plan.sheet_name, Image.new("RGB", (64, 64)), "sheet", {})
        return BatchResult(written, [out / c.file_name for c in done], len(plan.cells), sheet)

    def export_lora(
        self, request: LoraRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> LoraWritten:
        """The real conversion (it needs no model)."""
        self.calls.append(Call("lora", request, cancel))
        return write_lora(request)

    def rebase_word(
        self, request: WordRequest, progress: ProgressCallback, cancel: CancelToken
    ) -> WordChange:
        """The attribute under its new word, as the core answers but without a model: its
        metadata changes (re-basing the learned word needs the model's embeddings; tested
        in tests/core/test_word_rebase.py)."""
        from ostaf.library.attribute_file import load_attribute
        from ostaf.method.words import attribute_word, check_word, replace_word

        self.calls.append(Call("word", request, cancel))
        self._wait(cancel)
        if self.fail_word is not None:
            raise self.fail_word
        attribute = load_attribute(request.attribute)
        old, new = attribute_word(attribute.meta), check_word(request.word)
        tuning = {**attribute.meta.tuning, "token": new}
        tuning["prompt"] = replace_word(str(tuning.get("prompt", "")), old, new)
        meta = replace(attribute.meta, tuning=tuning)
        return WordChange(replace(attribute, meta=meta), attribute.content_hash())

    def _wait(self, cancel: CancelToken) -> None:
        while not self.gate.wait(0.01):
            cancel.check()
        if self.step_delay_s:
            time.sleep(self.step_delay_s)


def save_fake_state(job: TuneJob, losses: list[float]) -> None:
    """A checkpoint file and the sidecar the service writes beside it."""
    assert job.checkpoint is not None
    record = {
        "image": str(job.image),
        "out": str(job.out),
        "name": job.name,
        "settings": job.settings.to_record(),
        "model": asdict(job.model),
        "key": "fake",
        "step": len(losses),
        "losses": losses,
    }
    atomic_write_bytes(job.checkpoint, b"fake state")
    atomic_write_text(sidecar(job.checkpoint), json.dumps(record))


def save_fake_learn_all_state(job: DecomposeJob, losses: list[float]) -> None:
    """A learn-all checkpoint and the sidecar the service writes beside it."""
    assert job.checkpoint is not None
    record = {
        "name": f"All three of {job.image.stem}",
        "image": str(job.image),
        "outs": {str(kind): str(path) for kind, path in job.outs.items()},
        "names": {str(kind): name for kind, name in job.names.items()},
        "learn_all": job.settings.to_record(),
        "model": asdict(job.model),
        "key": "fake",
        "step": len(losses),
        "losses": losses,
    }
    atomic_write_bytes(job.checkpoint, b"fake state")
    atomic_write_text(sidecar(job.checkpoint), json.dumps(record))


def fake_metadata(
    settings: RenderSettings, seed: int, model: ModelInfo
) -> tuple[str, dict[str, Any]]:
    """PNG metadata shaped like the core's; an attribute file's name stands in for its content
    hash (the library names files by the hash's first 16 digits)."""
    size = f"{settings.width or model.resolution}x{settings.height or model.resolution}"
    pairs: list[tuple[str, object]] = [("Steps", settings.steps), ("Seed", seed), ("Size", size)]
    record = {
        "prompt": settings.prompt,
        "negative_prompt": settings.negative_prompt,
        "seed": seed,
        "steps": settings.steps,
        "guidance": settings.guidance,
        "sampler": settings.sampler,
        "width": settings.width or model.resolution,
        "height": settings.height or model.resolution,
        "model": {"name": model.name, "fingerprint": "fake"},
        "attributes": [
            {
                "name": read_meta(a.path).name,
                "kind": str(read_meta(a.path).kind),
                "intensity": a.intensity,
                "content_hash": a.path.stem + "0" * 48,
            }
            for a in settings.attributes
        ],
    }
    return a1111_parameters(settings.prompt, settings.negative_prompt, pairs), record


@dataclass
class Dialogs:
    """Answers for patched modal dialogs, and a record of what was asked."""

    texts: list[str] = field(default_factory=list)  # next answers of QInputDialog.getText
    confirm: bool = True  # QMessageBox.question → Yes (or Cancel)
    files: list[str] = field(default_factory=list)  # next answers of file dialogs
    file_lists: list[list[str]] = field(default_factory=list)  # of getOpenFileNames
    asked: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    answers = Dialogs()

    def get_text(_parent: object, title: str, *_args: object, **_kw: object) -> tuple[str, bool]:
        answers.asked.append(title)
        return (answers.texts.pop(0), True) if answers.texts else ("", False)

    def question(_parent: object, title: str, *_args: object, **_kw: object) -> object:
        answers.asked.append(title)
        yes, cancel = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Cancel
        return yes if answers.confirm else cancel

    def message(_parent: object, title: str, *_args: object, **_kw: object) -> object:
        answers.asked.append(title)
        return QMessageBox.StandardButton.Ok

    def file_name(_parent: object, title: str, *_args: object, **_kw: object) -> tuple[str, str]:
        answers.asked.append(title)
        return (answers.files.pop(0) if answers.files else "", "")

    def file_names(
        _parent: object, title: str, *_args: object, **_kw: object
    ) -> tuple[list[str], str]:
        answers.asked.append(title)
        return (answers.file_lists.pop(0) if answers.file_lists else [], "")

    def folder(_parent: object, title: str, *_args: object, **_kw: object) -> str:
        answers.asked.append(title)
        return answers.files.pop(0) if answers.files else ""

    monkeypatch.setattr(QInputDialog, "getText", get_text)
    monkeypatch.setattr(QMessageBox, "question", question)
    for name in ("information", "warning", "critical", "about"):
        monkeypatch.setattr(QMessageBox, name, message)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", file_name)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", file_name)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", file_names)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", folder)
    return answers


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def vm(home: Path, fake: FakeBackend, qtbot: QtBot) -> Iterator[MainViewModel]:
    """The main view-model over the fake backend, started, with a first project open."""
    model = MainViewModel(lambda: fake, UiState())
    model.start()
    qtbot.waitUntil(lambda: model.session.model is not None, timeout=5000)
    yield model
    fake.gate.set()
    model.shutdown()


@pytest.fixture
def window(vm: MainViewModel, qtbot: QtBot) -> MainWindow:
    win = MainWindow(vm)
    qtbot.addWidget(win)
    win.resize(1440, 900)
    win.show()
    qtbot.waitExposed(win)
    return win


def add_attribute(
    vm: MainViewModel, name: str = "Blue glaze", seed: int = 0, word: str = ""
) -> str:
    """Put an attribute file into the open project's library; returns its id."""
    project = vm.projects.current
    assert project is not None
    path = write_attribute_file(
        project.attribute_path(f"{seed + 1:016x}" + "0" * 48), name=name, seed=seed, word=word
    )
    vm.library.refresh()
    return path.stem


def reference_image(folder: Path, size: int = 96, name: str = "reference.png") -> Path:
    path = folder / name
    image = Image.new("RGB", (size, size), "white")
    image.paste((200, 40, 40), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    image.save(path)
    return path
