"""The Learn panel's fourth choice, "All three": the description with the three placeholders
prefilled from the picture, three free words, one run that saves three attributes and
selects them, and an interrupted one on the resume bar."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from ostaf.decompose_request import ALL_KINDS, DecomposeJob
from ostaf.errors import TuningDivergedError
from ostaf.method.words import attribute_word
from ostaf.world.demo_reference import DEMO_SCENE
from ostaf_desktop.viewmodels.main import MainViewModel
from ostaf_desktop.viewmodels.tuning import ALL_THREE
from ostaf_desktop.widgets.main_window import MainWindow
from tests.desktop.conftest import FakeBackend, add_attribute

CAPTION = "a {appearance} {shape}, {style} style, on a white background"


def star(folder: Path) -> Path:
    """A picture of the demo world (the fake model is a demo model): an orange striped star."""
    path = folder / "star.png"
    scene = replace(DEMO_SCENE, centre=(0.5, 0.5), detail_seed=0)  # the demo's star, centred
    scene.render(64).save(path)
    return path


def test_all_three_prefills_the_description_and_gives_three_free_words(
    window: MainWindow, vm: MainViewModel, tmp_path: Path
) -> None:
    add_attribute(vm, "Old", word="cat")  # the first demo word is taken
    assert vm.reference.open_image(star(tmp_path))
    picker = window.tuning.picker
    picker.all_three.radio.click()
    assert vm.tuning.kind == ALL_THREE
    assert picker.caption.text() == CAPTION  # what the world reads in the picture
    words = dict(vm.tuning.words_of_all)
    assert sorted(words) == sorted(str(kind) for kind in ALL_KINDS)
    assert len(set(words.values())) == 3 and "cat" not in words.values()
    shown = picker.word.text()
    assert all(f"{kind} <b" in shown and f">{word}</b>" in shown for kind, word in words.items())
    rates = (picker.learning_rate, picker.prior, picker.embedding_rate)
    assert not any(field.isEnabled() for field in rates)  # each kind tunes at its own
    assert window.tuning.hint.full_text().startswith("Three attributes in one run")
    picker.cards[ALL_KINDS[0]].radio.click()  # back to one kind: its own description
    assert "{shape}" not in picker.caption.text() and "{token}" in picker.caption.text()
    assert all(field.isEnabled() for field in rates)


def test_tune_saves_three_attributes_selects_them_and_says_what_each_carries(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    assert vm.reference.open_image(star(tmp_path))
    window.tuning.picker.all_three.radio.click()
    words = dict(vm.tuning.words_of_all)
    vm.tuning.steps = 12
    window.tuning.tune_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    calls = fake.of_kind("learn_all")
    assert len(calls) == 1 and not fake.of_kind("tune")
    request: DecomposeJob = calls[0].request
    assert request.settings.caption == CAPTION and request.settings.one_pass
    assert {str(k): w for k, w in request.settings.words.items()} == words
    rows = {row.kind: row for row in vm.library.rows}
    assert sorted(rows) == sorted(str(kind) for kind in ALL_KINDS)
    assert {kind: row.token for kind, row in rows.items()} == words
    assert sorted(a.id for a in vm.library.applied) == sorted(r.id for r in rows.values())
    assert vm.library.selected_id == rows["shape"].id
    status = vm.tuning.stage_text
    for kind, word in words.items():
        assert f"{kind} '{word}'" in status and f"{kind} '{word}'" in vm.session.status_message
    assert "outline and pose" in status  # what shape carries
    assert vm.tuning.losses and len(vm.tuning.losses) == 12
    project = vm.projects.current
    assert project is not None
    assert not list((project.folder / ".staging").glob("*.safetensors"))
    assert sorted(attribute_word(e.meta) for e in project.attributes()) == sorted(words.values())


def test_an_interrupted_all_three_run_is_offered_and_resumes_as_all_three(
    window: MainWindow, vm: MainViewModel, fake: FakeBackend, qtbot: QtBot, tmp_path: Path
) -> None:
    assert vm.reference.open_image(star(tmp_path))
    window.tuning.picker.all_three.radio.click()
    vm.tuning.steps = 8
    fake.fail_tune, fake.fail_tune_at = TuningDivergedError("the loss became nan"), 3
    vm.tuning.tune()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    assert not vm.library.rows
    resume = vm.resume
    assert resume.visible and resume.can_resume
    assert "learns shape, appearance and style together" in resume.message
    assert "half its rates" in resume.message
    assert window.resume_bar.resume_button.text() == "Resume at half the rates"
    first: DecomposeJob = fake.of_kind("learn_all")[0].request
    window.tuning.picker.cards[ALL_KINDS[1]].radio.click()  # the panel moves on meanwhile
    window.resume_bar.resume_button.click()
    qtbot.waitUntil(lambda: not vm.tuning.running, timeout=5000)
    again: DecomposeJob = fake.of_kind("learn_all")[1].request
    assert again.checkpoint == first.checkpoint
    assert again.settings.words == first.settings.words
    for kind in ALL_KINDS:
        rate, was = again.settings.members[kind].learning_rate, first.settings.members[kind]
        assert abs(rate - was.learning_rate / 2) < 1e-12
    assert window.tuning.picker.all_three.radio.isChecked()  # the panel shows the run
    assert vm.tuning.losses == pytest.approx([1.0 / step for step in range(1, 9)], rel=1e-5)
    assert sorted(row.kind for row in vm.library.rows) == sorted(str(k) for k in ALL_KINDS)
    assert not resume.visible
