"""Learning all three from one reference: three files with their own words and regions, one
loop that costs one run, each kind alone in the loop exactly its ordinary run, cancel and
resume, and the command line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ostaf.cli.main import main
from ostaf.decompose_request import (
    ALL_KINDS,
    DecomposeJob,
    DecomposeSettings,
    kind_caption,
)
from ostaf.errors import Cancelled, SettingsError
from ostaf.images import load_reference
from ostaf.library.attribute_file import load_attribute
from ostaf.library.projects import ProjectStore
from ostaf.method.decompose import _one_pass, _recorded_caption, learn_all
from ostaf.method.regions import REGION_BY_KIND, AttributeKind
from ostaf.method.tuning import tune
from ostaf.method.tuning_checkpoint import read_sidecar
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken, Progress
from ostaf.render.rendering import render
from ostaf.requests import KIND_TUNING, ModelChoice, RenderSettings
from ostaf.service import OstafService
from ostaf.world.demo_reference import DEMO_SCENE
from ostaf.world.description import describe_all, describe_words
from ostaf.world.scenes import ATTRIBUTES, Scene

SHAPE, APPEARANCE, STYLE = AttributeKind.SHAPE, AttributeKind.APPEARANCE, AttributeKind.STYLE
WORDS = {SHAPE: "f", APPEARANCE: "d", STYLE: "g"}
CAPTION = "a {appearance} {shape}, {style} style, on a white background"
STAR = replace(DEMO_SCENE, centre=(0.5, 0.5), detail_seed=0)  # the demo's star, centred


def _words(scene: Scene) -> dict[str, str]:
    """The world's words of `scene`, as the oracle reads them."""
    return {name: getattr(scene, name) for name in ATTRIBUTES}


@pytest.fixture
def star(tmp_path: Path) -> Path:
    path = tmp_path / "star.png"
    STAR.render(64).save(path)
    return path


def _settings(steps: int = 6, **shared: object) -> DecomposeSettings:
    _, described = describe_all(_words(STAR))
    return DecomposeSettings.create(WORDS, CAPTION, described, steps=steps, seed=2, **shared)


def _service(model: BaseModel) -> OstafService:
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    return service


def _job(image: Path, folder: Path, settings: DecomposeSettings, **kw: object) -> DecomposeJob:
    outs = {kind: folder / f"{kind}.safetensors" for kind in ALL_KINDS}
    return DecomposeJob(image, settings, outs, model=ModelChoice(device="cpu"), **kw)  # type: ignore[arg-type]


def test_the_run_saves_three_attributes_with_own_words_regions_and_each_others_ids(
    model: BaseModel, star: Path, tmp_path: Path
) -> None:
    from ostaf.method.decompose import _own_prompt

    settings = _settings()
    outcome = _service(model).learn_all(_job(star, tmp_path, settings))
    loaded = {kind: load_attribute(path) for kind, path in outcome.paths.items()}
    assert sorted(loaded) == sorted(ALL_KINDS)
    ids = {kind: attribute.content_hash()[:16] for kind, attribute in loaded.items()}
    all_targets = [n for n, _ in model.unet.named_modules() if n.endswith(("to_q", "to_out.0"))]
    for kind, attribute in loaded.items():
        meta, tuning = attribute.meta, attribute.meta.tuning
        assert meta.kind is kind and meta.region == REGION_BY_KIND[kind]
        assert tuning["token"] == WORDS[kind]
        # each kind tuned on its single run's own description (split samples, the default)
        assert tuning["prompt"] == _own_prompt(settings.members[kind])
        words = tuning["prompt"].replace(",", " ").split()
        assert WORDS[kind] in words
        assert not {WORDS[other] for other in ALL_KINDS if other != kind} & set(words)
        assert tuning["learning_rate"] == KIND_TUNING[kind].learning_rate
        assert tuning["strength"] == KIND_TUNING[kind].strength
        assert tuning["together"] == "one pass"
        others = [ids[other] for other in ALL_KINDS if other != kind]
        assert tuning["learned_with"] == ",".join(others)
        assert set(meta.targets) == set(REGION_BY_KIND[kind].select(meta.targets))
        assert [t for t in all_targets if REGION_BY_KIND[kind].matches(t)]
        assert all(torch.count_nonzero(a @ b) > 0 for a, b in attribute.factors.values())
        # each kind learns its word where KIND_TUNING says so (every kind since issue 26)
        assert bool(attribute.shifts) == bool(KIND_TUNING[kind].embedding_rate)
    assert len({a.meta.tuning["token"] for a in loaded.values()}) == 3
    shape_layers = set(loaded[SHAPE].factors)
    assert shape_layers.isdisjoint(loaded[APPEARANCE].factors)
    assert set(loaded[APPEARANCE].factors) == set(loaded[STYLE].factors)  # both the decoder


def test_lambda_zero_of_each_is_the_base_model_bit_for_bit(
    model: BaseModel, star: Path, tmp_path: Path
) -> None:
    paths = _service(model).learn_all(_job(star, tmp_path, _settings())).paths
    attributes = {kind: load_attribute(path) for kind, path in paths.items()}
    settings = RenderSettings(prompt="a d f, g style, on a gray background", seeds=[3], steps=6)
    base = render(model, settings)[0].image.tobytes()
    for kind, attribute in attributes.items():
        assert render(model, settings, [(attribute, 0.0)])[0].image.tobytes() == base, kind
        assert render(model, settings, [(attribute, 1.0)])[0].image.tobytes() != base, kind
    together = [(attribute, 0.0) for attribute in attributes.values()]
    assert render(model, settings, together)[0].image.tobytes() == base


@torch.no_grad()
def _joint_loss(model: BaseModel, star: Path, attributes: dict | None) -> float:
    """ε-prediction loss of the one description on fixed noise at timesteps every kind
    tunes at, with the three applied as they were while tuning (or none)."""
    from diffusers import DDPMScheduler

    from ostaf.method.tuning import _prepare

    model.merger.restore()
    if attributes:
        model.merger.apply(
            [(a.factors, 1.0 / a.meta.tuning["strength"]) for a in attributes.values()],
            [(a.shifts, 1.0) for a in attributes.values()],
        )
    reference = load_reference(star, model.resolution)
    batch = _prepare(model, reference, "a d f, g style, on a white background", False)
    model.merger.restore()
    if attributes:  # the text above saw the words; the U-Net sees the offsets
        model.merger.apply(
            [(a.factors, 1.0 / a.meta.tuning["strength"]) for a in attributes.values()]
        )
    scheduler = DDPMScheduler.from_config(model.pipe.scheduler.config)
    generator = torch.Generator().manual_seed(7)
    t = torch.linspace(520, 980, 12).long()
    x0 = batch.latents.expand(12, -1, -1, -1)
    noise = torch.randn(x0.shape, generator=generator)
    pred = model.unet(
        scheduler.add_noise(x0, noise, t), t, encoder_hidden_states=batch.text.expand(12, -1, -1)
    ).sample
    model.merger.restore()
    return float(((pred - noise) ** 2).mean())


def test_the_loss_falls_when_overfitting(model: BaseModel, star: Path) -> None:
    reference = load_reference(star, model.resolution)
    result = learn_all(model, reference, _settings(steps=60))
    assert len(result.results[SHAPE].losses) == 60
    base = _joint_loss(model, star, None)
    tuned = _joint_loss(model, star, result.attributes)
    assert tuned < 0.9 * base, (base, tuned)


@pytest.mark.parametrize("samples", ["split", "shared"])
def test_one_pass_costs_the_unet_work_of_one_run(
    model: BaseModel, star: Path, samples: str
) -> None:
    reference = load_reference(star, model.resolution)
    rows: list[int] = []
    hook = model.unet.register_forward_pre_hook(lambda _m, args: rows.append(len(args[0])))
    steps: list[int] = []

    def count(report: Progress) -> None:
        if report.stage == "tuning":
            steps.append(report.step)

    settings = replace(_settings(steps=5), samples=samples)
    try:
        learn_all(model, reference, settings, progress=count)
        together, together_steps = sum(rows), list(steps)
        rows.clear()
        style = tune(model, reference, settings.members[STYLE])
        one_style_run = sum(rows)
        rows.clear()
        steps.clear()
        learn_all(model, reference, replace(settings, one_pass=False), progress=count)
        three_runs = sum(rows)
    finally:
        hook.remove()
    assert together_steps == [1, 2, 3, 4, 5]
    # A style run keeps the prompt: per step 4 samples, their 4 frozen predictions and 4
    # copies; shape and appearance 4 each. Shared: style's 12 with everyone's offsets on.
    # Split: 2 samples per kind, style's 2 frozen predictions and 2 copies.
    assert one_style_run == 12 * 5 and three_runs == 20 * 5
    assert together == (10 if samples == "split" else 12) * 5
    assert steps == list(range(1, 16))  # three passes report one job of 15 steps
    assert len(style.losses) == 5


@pytest.mark.parametrize("kind", [SHAPE, APPEARANCE, STYLE])
def test_a_kind_alone_in_the_loop_is_its_ordinary_run_bit_for_bit(
    model: BaseModel, star: Path, kind: AttributeKind
) -> None:
    reference = load_reference(star, model.resolution)
    settings = _settings(steps=4)
    # the kind's own description is the one description, so both runs see the same prompt
    member = replace(settings.members[kind], caption=_recorded_caption(settings, kind))
    settings = DecomposeSettings({**settings.members, kind: member}, CAPTION, samples="shared")
    looped = _one_pass(model, reference, settings, {}, lambda _: None, CancelToken(), None, (kind,))
    alone = tune(model, reference, member)
    ours, theirs = looped.results[kind].attribute, alone.attribute
    assert looped.results[kind].losses == alone.losses
    assert sorted(ours.factors) == sorted(theirs.factors)
    for path, (a, b) in theirs.factors.items():
        assert torch.equal(ours.factors[path][0], a) and torch.equal(ours.factors[path][1], b)
    assert sorted(ours.shifts) == sorted(theirs.shifts)
    assert all(torch.equal(ours.shifts[k], v) for k, v in theirs.shifts.items())


def test_cancel_stops_within_a_step_and_writes_nothing(
    model: BaseModel, star: Path, tmp_path: Path
) -> None:
    token = CancelToken()
    seen: list[int] = []

    def on_progress(report: Progress) -> None:
        if report.stage == "tuning":
            seen.append(report.step)
            if report.step == 3:
                token.cancel()

    job = _job(star, tmp_path, _settings(steps=20), checkpoint=tmp_path / "state")
    with pytest.raises(Cancelled):
        _service(model).learn_all(job, on_progress, token)
    assert max(seen) == 3
    assert not list(tmp_path.glob("*.safetensors"))
    assert read_sidecar(tmp_path / "state") is None  # the user's Stop leaves no state


class Crash(Exception):
    """Stands for the process dying."""


def test_a_resumed_run_ends_with_the_files_of_an_uninterrupted_one(
    model: BaseModel, star: Path, tmp_path: Path
) -> None:
    service = _service(model)
    straight = service.learn_all(_job(star, tmp_path / "straight", _settings(steps=8))).paths

    def crash(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 5:
            raise Crash

    state = tmp_path / "resumed" / "all.resume"
    job = _job(star, tmp_path / "resumed", _settings(steps=8), checkpoint=state)
    job.checkpoint_interval_s = 0.0
    with pytest.raises(Crash):
        service.learn_all(job, crash)
    record = read_sidecar(state)
    assert record is not None and record["step"] == 5
    assert (
        DecomposeSettings.from_record(record["learn_all"]).to_record() == job.settings.to_record()
    )
    notes: list[str] = []
    resumed = service.learn_all(job, lambda report: notes.append(report.note)).paths
    assert "Resuming from step 5" in notes
    for kind in ALL_KINDS:
        assert resumed[kind].read_bytes() == straight[kind].read_bytes(), kind
    assert read_sidecar(state) is None


def test_the_settings_refuse_what_one_run_cannot_do() -> None:
    with pytest.raises(SettingsError, match="both use the word 'f'"):
        DecomposeSettings.create({**WORDS, STYLE: "F"}, CAPTION).validate()
    with pytest.raises(SettingsError, match=r"must name \{style\}"):
        DecomposeSettings.create(WORDS, "a {appearance} {shape}").validate()
    with pytest.raises(SettingsError, match=r"holds \{token\}"):
        DecomposeSettings.create(WORDS, "a {appearance} {shape} {token}, {style} style").validate()
    uneven = _settings()
    uneven.members[SHAPE] = replace(uneven.members[SHAPE], steps=7)
    with pytest.raises(SettingsError, match="must share their steps"):
        uneven.validate()
    with pytest.raises(SettingsError, match="word for style"):
        DecomposeSettings.create({SHAPE: "f", APPEARANCE: "d"}, CAPTION)
    # the words themselves stand for their placeholders, as {token} and the token do alone
    written = DecomposeSettings.create(WORDS, "a d f, g style")
    written.validate()
    assert written.prompt() == "a d f, g style"
    assert DecomposeSettings.from_record(_settings().to_record()).to_record() == (
        _settings().to_record()
    )
    with pytest.raises(SettingsError, match="damaged"):
        DecomposeSettings.from_record({"members": {"colour": {}}, "caption": CAPTION})


def test_each_kinds_own_description_is_its_single_runs_on_the_demo_world() -> None:
    for scene in (STAR, replace(STAR, colour="red", pattern="dotted", style="outline")):
        words = _words(scene)
        caption, described = describe_all(words)
        assert caption == CAPTION
        for kind in ALL_KINDS:
            assert kind_caption(caption, kind, WORDS, described) == describe_words(words, kind)
    # unknown words: the others are left out as prior preservation leaves them
    assert kind_caption(CAPTION, SHAPE, WORDS) == "a {token}, on a white background"
    assert kind_caption(CAPTION, STYLE, WORDS, class_word="vase") == (
        "a vase, {token} style, on a white background"
    )


def test_the_command_writes_three_files_and_prints_their_words(
    star: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "three"
    args = ["tune", str(star), "--attribute", "all", "--steps", "2", "--device", "cpu"]
    code = main([*args, "--out", f"{out}/", "--word", "f,d,g"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    lines = [line.split() for line in printed.out.strip().splitlines()]
    assert [(kind, word) for kind, word, _ in lines] == [
        ("shape", "f"),
        ("appearance", "d"),
        ("style", "g"),
    ]
    for kind, word, path in lines:
        meta = load_attribute(Path(path)).meta
        assert Path(path) == out / f"{kind}.safetensors" and meta.tuning["token"] == word
        assert meta.kind == kind
    assert "reads the picture as 'a {appearance} {shape}, {style} style" in printed.err
    assert "star" in printed.err  # the demo world's description, with the star's own words
    # style tuned on its own description: the star's own words for shape and appearance
    assert load_attribute(out / "style.safetensors").meta.tuning["prompt"] == (
        "an orange striped star, g style, on a white background"
    )
    code = main([*args, "--out", str(out / "x"), "--learning-rate", "0.1"])
    assert code == 2 and "each kind tunes with its own" in capsys.readouterr().err


def test_the_command_saves_into_a_project_with_words_of_their_own(
    star: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.attribute_files import write_attribute_file

    project, _ = ProjectStore().find_or_create("Decomposed")
    project.release()
    write_attribute_file(project.attributes_dir / "old.safetensors", word="cat")
    args = ["tune", str(star), "--attribute", "all", "--steps", "2", "--device", "cpu"]
    code = main([*args, "--project", "Decomposed", "--model", "demo"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    words = [line.split()[1] for line in printed.out.strip().splitlines()]
    assert len(set(words)) == 3 and "cat" not in words
    entries = project.attributes()
    assert sorted(str(e.meta.kind) for e in entries) == [
        "appearance",
        "appearance",
        "shape",
        "style",
    ]
    assert sorted(project.words()) == sorted(["cat", *words])
    staging = project.folder / ".staging"
    assert not list(staging.glob("*.safetensors"))


def test_one_kind_also_saves_into_a_project_with_a_word_of_its_own(
    star: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.attribute_files import write_attribute_file

    project, _ = ProjectStore().find_or_create("Single")
    project.release()
    write_attribute_file(project.attributes_dir / "old.safetensors", word="cat")
    args = ["tune", str(star), "--attribute", "shape", "--steps", "2", "--device", "cpu"]
    code = main([*args, "--project", "Single", "--model", "demo"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    word, path = printed.out.split()
    assert word == "d" and Path(path).parent == project.attributes_dir  # "cat" is taken
    assert load_attribute(Path(path)).meta.tuning["token"] == "d"
    assert not list((project.folder / ".staging").glob("*.safetensors"))
    code = main([*args, "--passes", "three", "--out", str(home / "x.safetensors")])
    assert code == 2 and "--passes is for --attribute all" in capsys.readouterr().err


def test_split_samples_condition_each_kind_on_its_own_description(
    model: BaseModel, star: Path
) -> None:
    from ostaf.method.decompose import _own_prompt, _prior_prompt
    from ostaf.method.tuning import _prepare_text

    reference = load_reference(star, model.resolution)
    settings = replace(_settings(steps=1), samples="split")
    seen: list[torch.Tensor] = []

    def record(_module: object, _args: tuple, kwargs: dict) -> None:
        seen.append(kwargs["encoder_hidden_states"].detach().clone())

    hook = model.unet.register_forward_pre_hook(record, with_kwargs=True)
    try:
        learn_all(model, reference, settings)
    finally:
        hook.remove()
    own = {
        kind: _prepare_text(model, reference, _own_prompt(settings.members[kind])).text[0]
        for kind in ALL_KINDS
    }
    assert not torch.equal(own[SHAPE], own[APPEARANCE])
    kept = _prepare_text(model, reference, _prior_prompt(settings.members[STYLE])).text[0]
    # calls: style's frozen prediction (its description without the style, 2 samples), then
    # one pass: 2 samples per kind in ALL_KINDS order and style's 2 copies that keep the
    # prompt, the 8 rows a shared pass uses too (4 samples and their 4 copies)
    assert [len(rows) for rows in seen] == [2, 8]
    rows = seen[1]
    for index, kind in enumerate(ALL_KINDS):
        for row in rows[2 * index : 2 * index + 2]:
            torch.testing.assert_close(row, own[kind])
    for row in [*seen[0], *rows[6:]]:
        torch.testing.assert_close(row, kept)


def test_split_samples_learn_too(model: BaseModel, star: Path) -> None:
    reference = load_reference(star, model.resolution)
    result = learn_all(model, reference, replace(_settings(steps=40), samples="split"))
    base = _joint_loss(model, star, None)
    tuned = _joint_loss(model, star, result.attributes)
    assert tuned < 0.9 * base, (base, tuned)
    with pytest.raises(SettingsError, match="samples"):
        replace(_settings(), samples="halves").validate()


def test_split_calls_fill_the_rows_a_shared_pass_may_use() -> None:
    from ostaf.method.joint_step import _calls

    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    # budget 8 rows: 6 samples and style's 2 copies fit in one call
    assert _calls(owner, [False, False, True], 4) == [slice(0, 6)]
    # budget 4 rows: shape's and appearance's 4 samples, then style's 2 with their copies
    assert _calls(owner, [False, False, True], 2) == [slice(0, 4), slice(4, 6)]
    # no kind keeps the prompt: budget 1 row, one sample a call
    assert _calls(owner, [False, False, False], 1) == [slice(i, i + 1) for i in range(6)]
