"""Each attribute's own word: the candidates are single tokens, a new attribute gets a free
one, two applied with one word are refused, and a word changes where it is shown."""

from __future__ import annotations

import pytest
import torch

from ostaf.errors import SettingsError, SharedWordError
from ostaf.library.attribute_file import Attribute
from ostaf.method.placeholder import word_token_ids
from ostaf.method.regions import AttributeKind
from ostaf.method.words import (
    CLIP_CANDIDATES,
    DEMO_CANDIDATES,
    attribute_word,
    check_distinct_words,
    check_word,
    choose_word,
    replace_word,
)
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import apply_attributes
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401


@pytest.mark.parametrize(
    "folder", ["sd15/tokenizer", "sd21/tokenizer", "sdxl/tokenizer", "sdxl/tokenizer_2"]
)
def test_real_candidates_are_one_token_of_the_shipped_tokenizers(folder: str) -> None:
    from ostaf.models.single_file import load_tokenizer
    from ostaf.paths import resource

    tokenizer = load_tokenizer(resource("model_configs", *folder.split("/")))
    pieces = {word: tokenizer(word, add_special_tokens=False).input_ids for word in CLIP_CANDIDATES}
    assert {word: len(ids) for word, ids in pieces.items()} == dict.fromkeys(CLIP_CANDIDATES, 1)
    assert len({ids[0] for ids in pieces.values()}) == len(CLIP_CANDIDATES)
    assert len(tokenizer("zwx", add_special_tokens=False).input_ids) > 1  # in use, not one


def test_demo_candidates_are_one_token_the_world_never_writes(demo: BaseModel) -> None:
    from ostaf.world.scenes import WORLD_WORDS

    family = demo.family
    ids = {
        word: word_token_ids(demo.pipe, family.text_encoders, family.tokenizers, word)
        for word in DEMO_CANDIDATES
    }
    assert len({tuple(found.values()) for found in ids.values()}) == len(DEMO_CANDIDATES)
    assert not set(DEMO_CANDIDATES) & set(WORLD_WORDS)
    with pytest.raises(SettingsError, match="'zqx' is 3 tokens"):
        word_token_ids(demo.pipe, family.text_encoders, family.tokenizers, "zqx")


def test_a_new_attribute_gets_the_first_free_word() -> None:
    assert choose_word([], demo=False) == CLIP_CANDIDATES[0]
    assert choose_word(["OHWX", "sks"], demo=False) == CLIP_CANDIDATES[1]
    assert choose_word(["sks", "Cat", "sks"], demo=True) == DEMO_CANDIDATES[1]
    crowded = [*DEMO_CANDIDATES, *DEMO_CANDIDATES[1:]]  # every word taken: the least used
    assert choose_word(crowded, demo=True) == DEMO_CANDIDATES[0]


def test_words_are_checked_and_stored_in_lower_case() -> None:
    assert check_word(" OhWx ") == "ohwx"
    for bad in ("", "two words", "a/b", "x" * 33):
        with pytest.raises(SettingsError, match="one word"):
            check_word(bad)
    assert replace_word("a SKS star, sks style, sksk", "sks", "ohwx") == (
        "a ohwx star, ohwx style, sksk"
    )


def test_two_applied_attributes_with_one_word_are_refused_naming_both(
    model: BaseModel,
) -> None:
    look = make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze")  # no word: sks
    pose = make_attribute(model, AttributeKind.SHAPE, 2, "Pose", word="SKS")
    ink = make_attribute(model, AttributeKind.STYLE, 3, "Ink", word="cat")
    assert attribute_word(look.meta) == "sks"
    weights = {n: p.detach().clone() for n, p in model.unet.named_parameters()}
    with pytest.raises(SharedWordError) as caught:
        apply_attributes(model, [(look, 1.0), (ink, 0.5), (pose, 0.7)])
    message = str(caught.value)
    assert "'Glaze' and 'Pose' both use the word 'sks'" in message
    assert "give 'Pose' a word of its own" in message and "\n" not in message
    assert caught.value.names == ("Glaze", "Pose") and caught.value.word == "sks"
    # Nothing was merged.
    assert all(torch.equal(p, weights[n]) for n, p in model.unet.named_parameters())
    apply_attributes(model, [(look, 1.0), (pose, 0.0), (ink, 1.0)])  # λ 0 adds nothing
    check_distinct_words([(look.meta, 1.0)])  # alone, as before
    model.merger.restore()


def test_the_batch_refuses_such_a_pair_before_a_model_loads(model: BaseModel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ostaf.library.attribute_file import save_attribute
    from ostaf.render.batch_plan import AttributeChoice, BatchRequest, plan_batch

    first = make_attribute(model, AttributeKind.APPEARANCE, 1, "Glaze", word="cat")
    second = make_attribute(model, AttributeKind.STYLE, 2, "Ink", word="cat")
    paths = [
        save_attribute(tmp_path / f"{i}.safetensors", a) for i, a in enumerate((first, second))
    ]
    metas = {path: a.meta for path, a in zip(paths, (first, second), strict=True)}
    both = [AttributeChoice(path) for path in paths]
    request = BatchRequest(["a cat star"], [1], tmp_path / "out", combinations=[both])
    with pytest.raises(SharedWordError, match="'Glaze' and 'Ink' both use the word 'cat'"):
        plan_batch(request, metas)
    request.intensities = [0.0]  # at λ 0 they add nothing: allowed
    assert len(plan_batch(request, metas).cells) == 1


def _with_shift(attribute: Attribute, model: BaseModel, word: str, seed: int) -> Attribute:
    """`attribute` with a learned shift of `word` in every text encoder."""
    from dataclasses import replace

    family = model.family
    ids = word_token_ids(model.pipe, family.text_encoders, family.tokenizers, word)
    generator = torch.Generator().manual_seed(seed)
    shifts, bases = {}, {}
    for encoder, token_id in ids.items():
        rows = model.merger.embeddings[encoder].weight
        key = f"{encoder}.{token_id}"
        shifts[key] = torch.randn(rows.shape[1], generator=generator) * 0.5
        bases[key] = rows[token_id].detach().clone()
    tuning = {**attribute.meta.tuning, "token": word, "prompt": f"a photo of a {word} object"}
    meta = replace(attribute.meta, tuning=tuning, shifts=list(shifts), format_version=2)
    return Attribute(meta, attribute.factors, shifts, bases)


def test_tuning_takes_a_word_of_one_token_only(
    model: BaseModel,
    reference_png,
    tmp_path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    from ostaf.cli.main import main
    from ostaf.library.attribute_meta import read_meta
    from ostaf.requests import ModelChoice, TuneJob, TuningSettings
    from ostaf.service import OstafService

    service = OstafService()
    service._model, service._model_choice = model, ModelChoice(device="cpu")
    settings = TuningSettings(kind=AttributeKind.SHAPE, steps=1, token="zqx")
    out = tmp_path / "pieces.safetensors"
    with pytest.raises(SettingsError, match="'zqx' is 3 tokens"):
        service.tune(TuneJob(reference_png, settings, out, model=ModelChoice(device="cpu")))
    assert not out.exists()

    out = tmp_path / "dog.safetensors"
    tune = ["tune", str(reference_png), "--attribute", "shape", "--out", str(out)]
    assert main([*tune, "--steps", "1", "--word", "Dog", "--device", "cpu"]) == 0
    assert attribute_word(read_meta(out)) == "dog"
    assert read_meta(out).tuning["prompt"] == "a photo of a dog object"
    capsys.readouterr()
    assert main([*tune, "--word", "two words", "--device", "cpu"]) == 2
    assert "must be one word" in capsys.readouterr().err


def test_the_service_refuses_such_a_pair_before_loading_a_model(
    model: BaseModel,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from ostaf.library.attribute_file import save_attribute
    from ostaf.requests import AppliedAttribute, RenderJob, RenderSettings
    from ostaf.service import OstafService

    paths = [
        save_attribute(tmp_path / f"{n}.safetensors", make_attribute(model, seed=n, name=f"A{n}"))
        for n in (1, 2)
    ]
    settings = RenderSettings("a sks star", attributes=[AppliedAttribute(p, 1.0) for p in paths])
    service = OstafService()
    with pytest.raises(SharedWordError, match="'A1' and 'A2' both use the word 'sks'"):
        service.render(RenderJob(settings, tmp_path / "out"))
    assert service.loaded_model is None and not (tmp_path / "out").exists()
