"""What survives a restart of the app, and a kill: the prompt and the results strip, in the
same order."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from pytestqt.qtbot import QtBot

from ostaf_desktop.ui_state import load_ui_state
from ostaf_desktop.viewmodels.main import MainViewModel
from tests.desktop.conftest import FakeBackend

PROMPT = "a red dotted circle, flat style, on a white background"


def restarted(fake: FakeBackend, qtbot: QtBot) -> MainViewModel:
    """A new app over the same data folder, reading the UI state the last one saved."""
    again = MainViewModel(lambda: fake, load_ui_state())
    again.start()
    qtbot.waitUntil(lambda: again.session.model is not None, timeout=5000)
    return again


def render_twice(vm: MainViewModel, qtbot: QtBot) -> list[Path | None]:
    """Two renders (3 images, then 2): the strip shows the newest render first."""
    for count, seed in ((3, 1), (2, 10)):
        vm.rendering.count, vm.rendering.seed = count, seed
        vm.rendering.render()
        qtbot.waitUntil(lambda: not vm.rendering.rendering, timeout=5000)
    shown = [item.path for item in vm.results.items]
    assert len(set(shown)) == 5
    return shown


def test_prompt_and_results_order_survive_a_restart(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    vm.rendering.prompt = PROMPT
    before = render_twice(vm, qtbot)
    vm.shutdown()

    again = restarted(fake, qtbot)
    try:
        assert again.rendering.prompt == PROMPT
        assert [item.path for item in again.results.items] == before
    finally:
        again.shutdown()


def test_prompt_and_results_survive_a_kill(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    vm.rendering.prompt = PROMPT
    before = render_twice(vm, qtbot)
    slug = vm.projects.current_slug
    qtbot.waitUntil(lambda: load_ui_state().project(slug).prompt == PROMPT, timeout=5000)
    vm.shutdown(save_state=False)  # like a killed app: nothing saved on the way out

    again = restarted(fake, qtbot)
    try:
        assert again.rendering.prompt == PROMPT
        assert [item.path for item in again.results.items] == before
    finally:
        again.shutdown()


def test_newer_files_come_first_then_the_remembered_order(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    before = render_twice(vm, qtbot)
    vm.shutdown()
    folder = before[0].parent  # type: ignore[union-attr]
    newer = folder / "made-by-the-cli.png"
    newer.write_bytes(before[0].read_bytes())  # type: ignore[union-attr]

    again = restarted(fake, qtbot)
    try:
        assert [item.path for item in again.results.items] == [newer, *before]
    finally:
        again.shutdown()


def test_a_folder_of_more_renders_than_the_strip_shows_keeps_its_order(
    vm: MainViewModel, fake: FakeBackend, qtbot: QtBot
) -> None:
    """20 images, the strip shows 12: the same 12 newest, in the same order, at every start
    (files of equal time in name order)."""
    folder = vm.rendering.output_dir()
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (8, 8), "red")
    for number in range(20):
        path = folder / f"{number:05d}-{number}.png"
        image.save(path)
        stamp = 1_700_000_000 + number // 2  # pairs share a modification time
        os.utime(path, (stamp, stamp))
    vm.shutdown()
    expected = [folder / f"{n:05d}-{n}.png" for n in range(19, 7, -1)]
    for _start in range(3):
        again = restarted(fake, qtbot)
        try:
            assert [item.path for item in again.results.items] == expected
        finally:
            again.shutdown()
