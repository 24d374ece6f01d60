"""Giving an attribute another word re-bases its learned shift: at λ 1 the prompt with the
new word is conditioned exactly as the prompt with the old word was (the demo model and
SDXL's two encoders), and the library, the command line, PNGs and recall follow the word."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ostaf.cli.main import main
from ostaf.errors import SettingsError
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_file import Attribute, load_attribute, save_attribute
from ostaf.library.projects import ProjectStore
from ostaf.method.regions import AttributeKind
from ostaf.method.word_rebase import rebase_word
from ostaf.method.words import attribute_word
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import apply_attributes
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401
from tests.core.test_words import _with_shift

CPU = torch.device("cpu")


def _encode(model: BaseModel, prompt: str, applied: list[tuple[Attribute, float]]) -> list:
    """The text encoders' outputs for `prompt` with `applied` merged: the hidden states and,
    for SDXL, the pooled embedding."""
    apply_attributes(model, applied)
    try:
        encoded = model.family.encode_prompt(model.pipe, prompt, CPU, (64, 64))
    finally:
        model.merger.restore()
    return [encoded.hidden, *((encoded.added or {}).values())]


def _assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_a_learned_word_renamed_conditions_as_before(model: BaseModel) -> None:
    glaze = _with_shift(
        make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze"), model, "sks", 1
    )
    renamed = rebase_word(glaze, model, "Cat")
    assert attribute_word(renamed.meta) == "cat"
    assert renamed.meta.tuning["prompt"] == "a photo of a cat object"
    assert renamed.factors is glaze.factors  # the offsets do not change
    before = _encode(model, "a sks star", [(glaze, 1.0)])
    _assert_same(_encode(model, "a cat star", [(renamed, 1.0)]), before)
    assert not torch.allclose(before[0], _encode(model, "a sks star", [])[0])  # it does act
    # The old word is the model's own again, and so is the new one at λ 0.
    _assert_same(_encode(model, "a sks star", [(renamed, 1.0)]), _encode(model, "a sks star", []))
    _assert_same(_encode(model, "a cat star", [(renamed, 0.0)]), _encode(model, "a cat star", []))
    # Renaming back gives the first attribute's conditioning again.
    back = rebase_word(renamed, model, "sks")
    _assert_same(_encode(model, "a sks star", [(back, 1.0)]), before)


def test_a_shape_without_a_learned_word_keeps_what_its_word_meant(
    model: BaseModel, tmp_path: Path
) -> None:
    pose = make_attribute(model, AttributeKind.SHAPE, 2, "Pose")
    assert not pose.shifts
    renamed = rebase_word(pose, model, "dog")
    assert renamed.meta.format_version == 2 and len(renamed.shifts) == 1
    _assert_same(
        _encode(model, "a dog star", [(renamed, 1.0)]), _encode(model, "a sks star", [(pose, 1.0)])
    )
    back = load_attribute(save_attribute(tmp_path / "pose.safetensors", renamed))
    assert attribute_word(back.meta) == "dog" and back.content_hash() == renamed.content_hash()
    assert back.content_hash() != pose.content_hash()


def test_sdxl_rebases_both_text_encoders(sdxl: BaseModel) -> None:
    look = make_attribute(sdxl, AttributeKind.APPEARANCE, 3, "XL look")
    look = _with_shift(look, sdxl, "sks", 3)
    assert {key.rsplit(".", 1)[0] for key in look.shifts} == {"text_encoder", "text_encoder_2"}
    renamed = rebase_word(look, sdxl, "ohwx")
    assert {key.rsplit(".", 1)[0] for key in renamed.shifts} == {"text_encoder", "text_encoder_2"}
    before = _encode(sdxl, "a sks star", [(look, 1.0)])
    after = _encode(sdxl, "a ohwx star", [(renamed, 1.0)])
    assert len(after) == 3  # the hidden states, the pooled embedding and the size ids
    _assert_same(after, before)
    pose = make_attribute(sdxl, AttributeKind.SHAPE, 4, "XL pose")
    _assert_same(
        _encode(sdxl, "a ohwx star", [(rebase_word(pose, sdxl, "ohwx"), 1.0)]),
        _encode(sdxl, "a sks star", [(pose, 1.0)]),
    )


def test_a_word_that_cannot_be_renamed_is_refused(model: BaseModel, sdxl: BaseModel) -> None:
    glaze = make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze")
    with pytest.raises(SettingsError, match="'Glaze' already uses the word 'sks'"):
        rebase_word(glaze, model, "SKS")
    with pytest.raises(SettingsError, match="'zqx' is 3 tokens"):
        rebase_word(glaze, model, "zqx")
    with pytest.raises(SettingsError, match="'zwx' is 2 tokens"):
        rebase_word(make_attribute(sdxl, AttributeKind.STYLE, 1, "Ink"), sdxl, "zwx")
    pieces = _with_shift(glaze, model, "q", 1)  # a shift under a token the word is not
    tuning = {**pieces.meta.tuning, "token": "x"}
    from dataclasses import replace

    odd = replace(pieces, meta=replace(pieces.meta, tuning=tuning))
    with pytest.raises(SettingsError, match="other tokens"):
        rebase_word(odd, model, "dog")


def _library(model: BaseModel, tmp_path: Path) -> tuple[str, dict[str, Path]]:
    project = ProjectStore().create("Words")
    glaze = _with_shift(
        make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze"), model, "sks", 1
    )
    ink = make_attribute(model, AttributeKind.STYLE, 2, "Ink", word="cat")
    paths = {}
    for attribute in (glaze, ink):
        source = save_attribute(tmp_path / f"{attribute.meta.name}.safetensors", attribute)
        paths[attribute.meta.name] = project.import_attribute(source).entry.path
    project.release()
    return project.slug, paths


def test_the_word_command_renames_in_place_and_refuses_what_it_must(
    home: Path, model: BaseModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slug, paths = _library(model, tmp_path)
    glaze = paths["Glaze"]
    original = glaze.read_bytes()
    command = ["library", "word", "--project", "Words", glaze.stem]
    model_args = ["--model", "demo", "--device", "cpu"]
    assert main([*command, "CAT", *model_args]) == 2
    assert "'Ink' already uses the word 'cat' in this project" in capsys.readouterr().err
    assert main([*command, "zqx", *model_args]) == 2
    assert "'zqx' is 3 tokens" in capsys.readouterr().err
    assert main([*command, "sks", *model_args]) == 2
    assert "already uses the word 'sks'" in capsys.readouterr().err
    assert glaze.read_bytes() == original  # nothing written by a refusal

    assert main([*command, "dog", *model_args]) == 0
    captured = capsys.readouterr()
    assert f"{glaze.stem}  appearance  dog" in captured.out
    assert "now written dog in prompts (was sks)" in captured.err
    renamed = load_attribute(glaze)  # the same file: its id stays
    assert attribute_word(renamed.meta) == "dog" and set(ProjectStore().find(slug).words()) == {
        "dog",
        "cat",
    }
    before = _encode(
        model,
        "a sks star",
        [
            (
                _with_shift(
                    make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze"), model, "sks", 1
                ),
                1.0,
            )
        ],
    )
    _assert_same(_encode(model, "a dog star", [(renamed, 1.0)]), before)

    assert main(["library", "list", "--project", "Words"]) == 0
    listed = capsys.readouterr().out
    assert f"{glaze.stem}  appearance  dog" in listed and "style       cat" in listed
    assert main(["library", "show", "--project", "Words", "Ink"]) == 0
    assert "word:          cat" in capsys.readouterr().out


def test_pngs_name_each_word_and_recall_follows_a_new_word(
    home: Path, model: BaseModel, tmp_path: Path
) -> None:
    from ostaf.render.recall import recall_image
    from ostaf.requests import AppliedAttribute, ModelChoice, RenderJob, RenderSettings
    from ostaf.service import OstafService

    slug, paths = _library(model, tmp_path)
    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")

    def render(prompt: str, out: str) -> Path:
        settings = RenderSettings(
            prompt, seeds=[1], steps=2, sampler="ddim", width=32, height=32, guidance=1.0,
            attributes=[AppliedAttribute(paths["Glaze"], 1.0), AppliedAttribute(paths["Ink"], 0.5)],
        )  # fmt: skip
        return service.render(RenderJob(settings, tmp_path / out)).paths[0]

    old = render("a sks star, cat style", "old")
    parameters, record = read_png_metadata(old)
    assert parameters is not None and record is not None
    values = parse_a1111(parameters)["values"]
    assert (values["OSTAF word 1"], values["OSTAF word 2"]) == ("sks", "cat")
    assert [(a["word"], a["file"]) for a in record["attributes"]] == [
        ("sks", paths["Glaze"].stem),
        ("cat", paths["Ink"].stem),
    ]
    project = ProjectStore().find(slug)
    renamed = service.rebase_word(paths["Glaze"], "dog", ModelChoice(device="cpu"))
    project.change_word(
        paths["Glaze"].stem, renamed, load_attribute(old_path := paths["Glaze"]).content_hash()
    )
    project.release()
    assert old_path == paths["Glaze"]

    recalled = recall_image(old, [ProjectStore().find(slug)])
    assert recalled.settings.prompt == "a dog star, cat style"
    assert [a.path for a in recalled.settings.attributes] == [paths["Glaze"], paths["Ink"]]
    assert recalled.warnings == ["'Glaze' is now written dog (was sks): the prompt says dog"]
    new = render("a dog star, cat style", "new")
    recalled = recall_image(new, [ProjectStore().find(slug)])
    assert recalled.settings.prompt == "a dog star, cat style" and recalled.warnings == []
    assert [a.path for a in recalled.settings.attributes] == [paths["Glaze"], paths["Ink"]]


def test_the_embedding_is_named_after_the_word_and_says_how_to_use_it(
    model: BaseModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.interop.lora_export import export_lora

    glaze = _with_shift(
        make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze"), model, "sks", 1
    )
    renamed = rebase_word(glaze, model, "dog")
    done = export_lora(renamed, tmp_path / "glaze.safetensors", "kohya", intensity=1.0)
    assert done.word == tmp_path / "dog.safetensors"
    assert done.metadata["ostaf.word"] == done.metadata["modelspec.trigger_phrase"] == "dog"
    assert done.metadata["ostaf.word_file"] == "dog.safetensors"
    embedding = load_file(str(done.word))["emb_params"]
    (key,) = glaze.shifts
    torch.testing.assert_close(
        embedding[0], glaze.shift_bases[key] + glaze.shifts[key], atol=1e-5, rtol=0
    )
    with pytest.raises(SettingsError, match="give the LoRA another name"):
        export_lora(renamed, tmp_path / "dog.safetensors", "kohya")
    pose = make_attribute(model, AttributeKind.SHAPE, 2, "Pose", word="cat")
    plain = export_lora(pose, tmp_path / "pose.safetensors", "kohya")
    assert plain.word is None and plain.metadata["modelspec.trigger_phrase"] == "cat"

    source = save_attribute(tmp_path / "renamed.safetensors", renamed)
    out = tmp_path / "cli" / "glaze.safetensors"
    out.parent.mkdir()
    assert main(["export-lora", str(source), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out), str(out.with_name("dog.safetensors"))]
    assert "Write dog in prompts where the attribute goes" in captured.err
    assert "embedding:dog" in captured.err
