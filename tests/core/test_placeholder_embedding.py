"""The placeholder's word embedding learned with the offsets: tuned, stored, applied at λ,
restored exactly, refused when damaged, resumed like the rest of a run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ostaf.errors import AttributeFileError, IncompatibleModelError, SettingsError
from ostaf.images import load_reference
from ostaf.interop.lora_export import export_lora
from ostaf.library.attribute_file import (
    BASE_PREFIX,
    SHIFT_PREFIX,
    Attribute,
    check_compatible,
    load_attribute,
    save_attribute,
)
from ostaf.library.attribute_meta import METADATA_KEY, SHIFTS_VERSION
from ostaf.method.placeholder import placeholder_ids, shifted_embeddings
from ostaf.method.regions import AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import apply_attributes
from ostaf.requests import ModelChoice, TuneJob, TuningSettings
from ostaf.service import OstafService
from tests.core.attribute_factory import make_attribute


def _ids(model: BaseModel, token: str = "sks") -> dict[str, list[int]]:
    return placeholder_ids(model.pipe, model.family.text_encoders, model.family.tokenizers, token)


def _settings(**changes: object) -> TuningSettings:
    values: dict[str, object] = {
        "kind": AttributeKind.APPEARANCE,
        "steps": 6,
        "seed": 3,
        "embedding_rate": 3e-3,
        "caption": "a {token} circle, flat style, on a white background",
    }
    values.update(changes)
    return TuningSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def learned(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Attribute:
    from tests.core.conftest import draw_reference

    path = tmp_path_factory.mktemp("ref") / "red.png"
    draw_reference(colour="red").save(path)
    demo.merger.restore()
    return tune(demo, load_reference(path, demo.resolution), _settings(), "learned").attribute


def test_tuning_learns_a_shift_per_token_id_of_the_placeholder(
    model: BaseModel, learned: Attribute, tmp_path: Path
) -> None:
    (token_id,) = _ids(model)["text_encoder"]
    assert sorted(learned.shifts) == [f"text_encoder.{token_id}"]
    shift = learned.shifts[f"text_encoder.{token_id}"]
    assert shift.shape == (model.pipe.text_encoder.get_input_embeddings().embedding_dim,)
    assert float(shift.norm()) > 1e-3  # the gradient reached it
    assert learned.meta.shifts == list(learned.shifts)
    row = model.pipe.text_encoder.get_input_embeddings().weight[token_id]
    assert torch.equal(learned.shift_bases[f"text_encoder.{token_id}"], row)  # the model's own
    assert learned.meta.format_version == SHIFTS_VERSION
    assert learned.meta.tuning["embedding_rate"] == 3e-3
    path = save_attribute(tmp_path / "a.safetensors", learned)
    back = load_attribute(path)
    assert back.shifts.keys() == learned.shifts.keys()
    assert all(torch.equal(back.shifts[k], learned.shifts[k]) for k in learned.shifts)
    assert all(torch.equal(back.shift_bases[k], learned.shift_bases[k]) for k in learned.shifts)
    assert back.content_hash() == learned.content_hash()
    unshifted = Attribute(learned.meta, learned.factors)
    assert unshifted.content_hash() != learned.content_hash()


def test_without_the_setting_nothing_changes_in_the_file(
    model: BaseModel, reference_png: Path
) -> None:
    reference = load_reference(reference_png, model.resolution)
    attribute = tune(model, reference, _settings(embedding_rate=0.0, steps=2)).attribute
    assert attribute.shifts == {} and attribute.meta.shifts == []
    assert attribute.meta.format_version == 1  # readable by every earlier version


def test_a_multi_token_placeholder_gets_a_shift_per_piece(demo: BaseModel) -> None:
    ids = _ids(demo, "zqx")["text_encoder"]
    assert len(ids) > 1 and len(set(ids)) == len(ids)


def test_rendering_adds_lambda_times_the_shift_and_restores_exactly(
    model: BaseModel, learned: Attribute
) -> None:
    key = next(iter(learned.shifts))
    token_id = int(key.rsplit(".", 1)[1])
    weight = model.pipe.text_encoder.get_input_embeddings().weight
    before = weight.detach().clone()
    apply_attributes(model, [(learned, 0.5)])
    torch.testing.assert_close(weight[token_id], before[token_id] + 0.5 * learned.shifts[key])
    # Shifts of one token id add up (two attributes with one word are refused before this:
    # tests/core/test_words.py).
    other = {key: torch.full_like(learned.shifts[key], 0.1)}
    model.merger.apply([], [(learned.shifts, 0.5), (other, 2.0)])
    expected = before[token_id] + 0.5 * learned.shifts[key] + 2.0 * 0.1
    torch.testing.assert_close(weight[token_id], expected)
    rows = torch.ones(weight.shape[0], dtype=torch.bool)
    rows[token_id] = False
    assert torch.equal(weight[rows], before[rows])  # no other word moves
    apply_attributes(model, [(learned, 0.0)])  # λ 0: the base, exactly
    assert torch.equal(weight, before)
    apply_attributes(model, [(learned, 1.0)])
    model.merger.restore()
    assert torch.equal(weight, before)


def test_the_tuning_hook_moves_only_prompts_with_the_placeholder(
    model: BaseModel, learned: Attribute
) -> None:
    def encode(prompt: str) -> torch.Tensor:
        device = torch.device("cpu")
        return model.family.encode_prompt(model.pipe, prompt, device, (64, 64)).hidden

    with_token, without = "a sks star", "a red star"
    base = encode(with_token), encode(without)
    with shifted_embeddings(model.merger.embeddings, learned.shifts):
        shifted = encode(with_token), encode(without)
    assert not torch.allclose(shifted[0], base[0])
    assert torch.equal(shifted[1], base[1])
    assert torch.equal(encode(with_token), base[0])  # the hook is gone


def _rewrite(path: Path, out: Path, meta_change=None, tensor_change=None) -> Path:  # type: ignore[no-untyped-def]
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()[METADATA_KEY])
    tensors = load_file(str(path))
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(tensors)
    save_file(tensors, str(out), metadata={METADATA_KEY: json.dumps(meta)})
    return out


def test_damaged_shifts_are_refused_naming_the_file(learned: Attribute, tmp_path: Path) -> None:
    good = save_attribute(tmp_path / "good.safetensors", learned)
    key = learned.meta.shifts[0]
    name = SHIFT_PREFIX + key

    def drop(tensors: dict) -> None:
        del tensors[name]

    def drop_base(tensors: dict) -> None:
        del tensors[BASE_PREFIX + key]

    def short_base(tensors: dict) -> None:
        tensors[BASE_PREFIX + key] = tensors[BASE_PREFIX + key][:-1].clone()

    def poison(tensors: dict) -> None:
        tensors[name] = tensors[name].clone()
        tensors[name][0] = float("nan")

    def matrix(tensors: dict) -> None:
        tensors[name] = tensors[name][None]

    cases = {
        "missing.safetensors": (None, drop, "is missing"),
        "nobase.safetensors": (None, drop_base, "is missing"),
        "shortbase.safetensors": (None, short_base, "two sizes"),
        "nan.safetensors": (None, poison, "NaN"),
        "matrix.safetensors": (None, matrix, "not a vector"),
        "unlisted.safetensors": (lambda m: m.update(shifts=[]), None, "unexpected tensor"),
        "badkey.safetensors": (lambda m: m.update(shifts=["sks"]), None, "damaged"),
        "oldversion.safetensors": (lambda m: m.update(format_version=1), None, "version"),
    }
    for file_name, (meta_change, tensor_change, message) in cases.items():
        bad = _rewrite(good, tmp_path / file_name, meta_change, tensor_change)
        with pytest.raises(AttributeFileError, match=message) as caught:
            load_attribute(bad)
        assert file_name in str(caught.value)


def test_a_shift_that_does_not_fit_the_model_is_refused(model: BaseModel) -> None:
    attribute = make_attribute(model)
    vocab = model.pipe.text_encoder.get_input_embeddings().num_embeddings
    width = model.pipe.text_encoder.get_input_embeddings().embedding_dim
    for key, size in ((f"text_encoder.{vocab}", width), ("text_encoder.5", width + 1)):
        meta = replace(attribute.meta, shifts=[key], format_version=SHIFTS_VERSION)
        foreign = Attribute(meta, attribute.factors, {key: torch.zeros(size)})
        with pytest.raises(IncompatibleModelError, match="placeholder embedding"):
            check_compatible(foreign, model)
    meta = replace(attribute.meta, shifts=["text_encoder_9.5"], format_version=SHIFTS_VERSION)
    foreign = Attribute(meta, attribute.factors, {"text_encoder_9.5": torch.zeros(width)})
    with pytest.raises(IncompatibleModelError, match="placeholder embedding"):
        check_compatible(foreign, model)


def test_the_setting_is_checked_recorded_and_a_kind_default() -> None:
    for bad in (-1e-3, 2.0, float("nan"), "1e-3"):
        with pytest.raises(SettingsError, match="embedding learning rate"):
            _settings(embedding_rate=bad).validate()
    settings = _settings(embedding_rate=1e-3)
    assert TuningSettings.from_record(settings.to_record()) == settings
    older = settings.to_record()
    del older["embedding_rate"]
    assert TuningSettings.from_record(older).embedding_rate == 0.0


def test_a_resumed_run_learns_the_same_shift(
    model: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    from ostaf.progress import Progress

    class Crash(Exception):
        pass

    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")

    def job(out: Path, checkpoint: Path | None) -> TuneJob:
        return TuneJob(
            reference_png, _settings(steps=8), out, "resumable", ModelChoice(device="cpu"),
            checkpoint=checkpoint, checkpoint_interval_s=0.0,
        )  # fmt: skip

    def crash(report: Progress) -> None:
        if report.stage == "tuning" and report.step == 4:
            raise Crash

    straight = service.tune(job(tmp_path / "straight.safetensors", None)).path
    out, checkpoint = tmp_path / "resumed.safetensors", tmp_path / "resumed.resume"
    with pytest.raises(Crash):
        service.tune(job(out, checkpoint), crash)
    service.tune(job(out, checkpoint))
    assert out.read_bytes() == straight.read_bytes()
    assert load_attribute(out).shifts


def test_sdxl_learns_a_shift_in_both_text_encoders(sdxl: BaseModel, reference_png: Path) -> None:
    reference = load_reference(reference_png, sdxl.resolution)
    attribute = tune(sdxl, reference, _settings(steps=3, learning_rate=3e-3)).attribute
    encoders = {key.rsplit(".", 1)[0] for key in attribute.shifts}
    assert encoders == {"text_encoder", "text_encoder_2"}
    assert all(float(v.norm()) > 0 for v in attribute.shifts.values())
    before = {n: e.weight.detach().clone() for n, e in sdxl.merger.embeddings.items()}
    apply_attributes(sdxl, [(attribute, 1.0)])
    assert any(not torch.equal(sdxl.merger.embeddings[n].weight, before[n]) for n in before)
    sdxl.merger.restore()
    assert all(torch.equal(sdxl.merger.embeddings[n].weight, before[n]) for n in before)


def test_export_writes_the_learned_word_as_an_embedding_beside_the_lora(
    model: BaseModel, learned: Attribute, tmp_path: Path
) -> None:
    out = tmp_path / "glaze.safetensors"
    done = export_lora(learned, out, "kohya", intensity=0.5)
    assert done.word == tmp_path / "sks.safetensors"  # named after the word
    assert done.metadata["ostaf.word"] == "sks"
    word = load_file(str(done.word))
    (key,) = learned.meta.shifts
    expected = learned.shift_bases[key] + 0.5 * learned.shifts[key]
    assert list(word) == ["emb_params"] and word["emb_params"].shape == (1, expected.shape[0])
    torch.testing.assert_close(word["emb_params"][0], expected)
    # The word at λ is the row OSTAF renders with at λ.
    apply_attributes(model, [(learned, 0.5)])
    row = model.pipe.text_encoder.get_input_embeddings().weight[int(key.rsplit(".", 1)[1])]
    torch.testing.assert_close(word["emb_params"][0], row)
    model.merger.restore()
    # A word file that is there already is refused before anything is written.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sks.safetensors").write_bytes(b"mine")
    with pytest.raises(SettingsError, match=r"sks\.safetensors already exists"):
        export_lora(learned, elsewhere / "clash.safetensors", "kohya")
    assert not (elsewhere / "clash.safetensors").exists()
    assert (elsewhere / "sks.safetensors").read_bytes() == b"mine"
    plain = export_lora(make_attribute(model), elsewhere / "plain.safetensors", "kohya")
    assert plain.word is None and plain.metadata["ostaf.word"] == "sks"


def test_sdxl_words_use_the_two_encoder_keys(
    sdxl: BaseModel, reference_png: Path, tmp_path: Path
) -> None:
    reference = load_reference(reference_png, sdxl.resolution)
    attribute = tune(sdxl, reference, _settings(steps=2, learning_rate=3e-3)).attribute
    done = export_lora(attribute, tmp_path / "xl.safetensors", "kohya")
    assert done.word is not None
    word = load_file(str(done.word))
    widths = {n: e.embedding_dim for n, e in sdxl.merger.embeddings.items()}
    assert word["clip_l"].shape[1] == widths["text_encoder"]
    assert word["clip_g"].shape[1] == widths["text_encoder_2"]
    assert word["clip_l"].shape[0] == word["clip_g"].shape[0] >= 1


def test_the_export_command_names_the_word_and_how_to_use_it(
    home: Path, learned: Attribute, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.cli.main import main

    source = save_attribute(tmp_path / "glaze-attribute.safetensors", learned)
    out = tmp_path / "glaze.safetensors"
    assert main(["export-lora", str(source), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    word = tmp_path / "sks.safetensors"
    assert captured.out.split() == [str(out), str(word)] and word.is_file()
    assert "Write sks in prompts where the attribute goes, as in OSTAF" in captured.err
    assert "put sks.safetensors (its learned word) in the tool's embeddings folder" in captured.err


def test_diffusers_reads_the_exported_word_as_the_embedding_ostaf_renders_with(
    model: BaseModel, learned: Attribute, tmp_path: Path
) -> None:
    """The word file, loaded by diffusers' textual-inversion loader under its own name,
    conditions the model exactly as OSTAF's merged placeholder does at the exported λ."""
    from ostaf.models.base_model import load_base_model

    done = export_lora(learned, tmp_path / "glaze.safetensors", "kohya", intensity=0.7)
    assert done.word is not None
    other = load_base_model("demo", device="cpu")  # the loader adds a token: not the shared one
    # diffusers adds the embedding as a new token, so it needs a name the tokenizer does not
    # know yet; A1111/Forge and ComfyUI take the file's name, the word.
    other.pipe.load_textual_inversion(str(done.word), token="learnedword")
    cpu = torch.device("cpu")
    apply_attributes(model, [(learned, 0.7)])
    try:
        ours = model.family.encode_prompt(model.pipe, "a sks star", cpu, (64, 64)).hidden
    finally:
        model.merger.restore()
    prompt = "a learnedword star"
    theirs = other.family.encode_prompt(other.pipe, prompt, cpu, (64, 64)).hidden
    torch.testing.assert_close(theirs, ours)
    plain = model.family.encode_prompt(model.pipe, "a sks star", cpu, (64, 64)).hidden
    assert not torch.allclose(plain, ours)  # the word does change the conditioning


def test_diffusers_reads_an_sdxl_word_into_both_encoders(
    sdxl: BaseModel, sdxl_folder: Path, reference_png: Path, tmp_path: Path
) -> None:
    """`clip_l` goes to the first text encoder and `clip_g` to the second, as diffusers
    loads SDXL embeddings: the conditioning then equals OSTAF's at the exported λ."""
    from ostaf.models.base_model import load_base_model

    reference = load_reference(reference_png, sdxl.resolution)
    attribute = tune(sdxl, reference, _settings(steps=3, learning_rate=3e-3)).attribute
    done = export_lora(attribute, tmp_path / "xl.safetensors", "kohya", intensity=0.8)
    assert done.word is not None
    word = load_file(str(done.word))
    other = load_base_model(sdxl_folder, device="cpu")
    pipe, name = other.pipe, "learnedword"
    pipe.load_textual_inversion(
        word["clip_l"], token=name, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
    )
    pipe.load_textual_inversion(
        word["clip_g"], token=name, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
    )
    cpu = torch.device("cpu")
    apply_attributes(sdxl, [(attribute, 0.8)])
    try:
        ours = sdxl.family.encode_prompt(sdxl.pipe, "a sks star", cpu, (64, 64))
    finally:
        sdxl.merger.restore()
    theirs = other.family.encode_prompt(pipe, f"a {name} star", cpu, (64, 64))
    torch.testing.assert_close(theirs.hidden, ours.hidden)
    assert ours.added is not None and theirs.added is not None
    torch.testing.assert_close(theirs.added["text_embeds"], ours.added["text_embeds"])
