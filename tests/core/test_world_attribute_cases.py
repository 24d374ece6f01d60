"""Cases of the attribute benchmark: held-out references, prompts, and how outputs are scored."""

from __future__ import annotations

import numpy as np
import pytest

from ostaf.errors import SettingsError
from ostaf.method.regions import AttributeKind
from ostaf.models.demo_model import DEMO_WORDS, demo_tokenizer_files
from ostaf.world import analyse, is_holdout, sample_scene
from ostaf.world.attribute_cases import TRANSFERRED, cases, reference_caption, references, score
from ostaf.world.oracle import silhouette_iou


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_references_are_held_out_and_differ_in_the_transferred_attribute(
    kind: AttributeKind,
) -> None:
    found = references(kind, 4)
    assert found == references(kind, 4)
    assert all(is_holdout(scene) for scene in found)
    key = TRANSFERRED[kind][0]
    values = {"shape": 5, "colour": 8, "style": 3}[key]
    assert len({getattr(scene, key) for scene in found}) == min(4, values)


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_prompts_ask_for_other_subjects_in_known_words(kind: AttributeKind) -> None:
    from transformers import CLIPTokenizer

    vocab, merges = demo_tokenizer_files(DEMO_WORDS)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]
    reference = references(kind, 1)[0]
    for case in cases(reference, kind, 6, seed=1):
        for name in ("shape", "colour", "pattern", "style"):
            same = getattr(case.expected, name) == getattr(reference, name)
            assert same == (name in TRANSFERRED[kind]), (name, case)
        token_prompt, omitted = case.prompt("token", "sks"), case.prompt("omitted")
        assert token_prompt.split().count("sks") + token_prompt.count("sks,") == 1
        assert "sks" not in omitted
        for word in TRANSFERRED[kind]:
            value = getattr(reference, word)
            assert value not in token_prompt.replace(",", "").split()
            assert value not in omitted.replace(",", "").split()
        for prompt in (token_prompt, omitted):
            pieces = tokenizer.tokenize(prompt)
            assert len(pieces) == len(prompt.replace(",", " ,").split()), prompt


def test_perfect_and_copied_outputs_score_as_expected() -> None:
    reference = references(AttributeKind.SHAPE, 1)[0]
    seen_reference = analyse(reference.render(64))
    case = cases(reference, AttributeKind.SHAPE, 1, seed=2)[0]
    perfect = score(case, analyse(case.expected.render(64)), seen_reference)
    assert (perfect.transfer, perfect.fidelity, perfect.leakage) == (1.0, 1.0, 0.0)
    assert perfect.shape_iou > 0.9
    copied = score(case, seen_reference, seen_reference)
    assert (copied.transfer, copied.fidelity, copied.leakage) == (1.0, 0.0, 1.0)


def test_silhouette_iou_sees_shape_and_pose_not_place_or_size() -> None:
    star = sample_scene(1, shape="star", rotation=0.0, size=0.5, centre=(0.4, 0.45))
    moved = sample_scene(2, shape="star", rotation=0.0, size=0.7, centre=(0.55, 0.5))
    turned = sample_scene(3, shape="star", rotation=18.0, size=0.6)
    circle = sample_scene(4, shape="circle", size=0.6)
    first = analyse(star.render(64))
    assert silhouette_iou(first, analyse(moved.render(64))) > 0.85
    assert silhouette_iou(first, analyse(turned.render(64))) < 0.8
    assert silhouette_iou(first, analyse(circle.render(64))) < 0.75


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_references_are_balanced_over_the_attribute_and_extend_as_a_prefix(
    kind: AttributeKind,
) -> None:
    key = TRANSFERRED[kind][0]
    values = {"shape": 5, "colour": 8, "style": 3}[key]
    found = references(kind, 2 * values)
    assert references(kind, values) == found[:values]
    counts = {getattr(scene, key): 0 for scene in found}
    for scene in found:
        counts[getattr(scene, key)] += 1
    assert sorted(counts.values()) == [2] * values


@pytest.mark.parametrize("kind", list(AttributeKind))
def test_reference_caption_names_everything_but_the_attribute(kind: AttributeKind) -> None:
    reference = references(kind, 1)[0]
    text = reference_caption(reference, kind, "{token}")
    words = text.replace(",", "").split()
    assert words.count("{token}") == 1
    for name in ("shape", "colour", "pattern", "style"):
        assert (getattr(reference, name) in words) == (name not in TRANSFERRED[kind]), name
    assert reference.background in words


def test_joint_needs_both_transfer_and_fidelity() -> None:
    reference = references(AttributeKind.SHAPE, 1)[0]
    seen_reference = analyse(reference.render(64))
    case = cases(reference, AttributeKind.SHAPE, 1, seed=2)[0]
    assert score(case, analyse(case.expected.render(64)), seen_reference).joint == 1.0
    assert score(case, seen_reference, seen_reference).joint == 0.0  # transfer, no fidelity


def test_reference_sets_are_apart_and_the_users_set_is_small_off_centre_and_turned() -> None:
    from ostaf.world.attribute_cases import USER_ROTATION, USER_SIZES

    for kind in AttributeKind:
        bench, unseen, users = (references(kind, 12, name) for name in ("bench", "unseen", "users"))
        assert references(kind, 12, "unseen") == unseen  # reproducible
        assert not {s.detail_seed for s in bench} & {s.detail_seed for s in unseen}
        for scene in users:
            assert USER_SIZES[0] <= scene.size <= USER_SIZES[1]
            assert abs(scene.rotation) <= USER_ROTATION
            assert max(abs(scene.centre[0] - 0.5), abs(scene.centre[1] - 0.5)) > 0.08
            assert scene.mask().any()  # the subject is drawn, inside the canvas
            assert np.asarray(scene.render(64)).std() > 0
    with pytest.raises(SettingsError, match="reference set 'mine' is unknown"):
        references(AttributeKind.SHAPE, 2, "mine")
