"""Training the demo model: exact latent normalisation, stages that resume to the same bytes,
seeded captions, and the shipped model's record."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ostaf.models.demo_model import build_demo_pipeline
from ostaf.world import dataset
from ostaf.world.checkpoint import StageCheckpoint, python_random_state, restore_python_random
from ostaf.world.train_denoiser import (
    Captioner,
    DenoiserRecipe,
    SdConditioner,
    _learning_rate,
    train_denoiser,
)
from ostaf.world.train_vae import (
    DecoderRecipe,
    VaeRecipe,
    finetune_decoder,
    latent_statistics,
    normalise_latents,
    train_vae,
)


def _images(count: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i) for i, _, _ in dataset(count, seed=3)]))


class _Interrupt(Exception):
    pass


def _stop_at_first_save(message: str) -> None:
    raise _Interrupt(message)


def test_normalised_latents_are_centred_and_decode_the_same() -> None:
    vae = build_demo_pipeline(seed=1).vae.eval()
    images = _images(8)
    means, stds = latent_statistics(vae, images)
    with torch.no_grad():
        before = vae.decode(means).sample
    centred, spread = normalise_latents(vae, means, stds)
    again_means, again_stds = latent_statistics(vae, images)
    assert torch.allclose(again_means, centred, atol=1e-4)
    assert torch.allclose(again_stds, spread, rtol=1e-3, atol=1e-6)
    assert centred.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert torch.allclose(centred.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-4)
    with torch.no_grad():
        assert torch.allclose(vae.decode(centred).sample, before, atol=1e-4)


def test_vae_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    images = _images(6)
    recipe = VaeRecipe(steps=4, batch=2, checkpoint_every=2, warmup=2)
    straight = build_demo_pipeline(seed=1).vae
    train_vae(straight, images, recipe, 5, StageCheckpoint(tmp_path / "a.pt"), lambda _: None)

    resumed = build_demo_pipeline(seed=1).vae
    checkpoint = StageCheckpoint(tmp_path / "b.pt")
    with pytest.raises(_Interrupt, match="step 2/4"):
        train_vae(resumed, images, recipe, 5, checkpoint, _stop_at_first_save)
    resumed = build_demo_pipeline(seed=1).vae  # a fresh process: only the file carries over
    messages: list[str] = []
    train_vae(resumed, images, recipe, 5, checkpoint, messages.append)
    assert messages[0] == "vae: resuming at step 2"
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_decoder_fine_tuning_leaves_the_encoder_and_so_the_latents_alone(tmp_path: Path) -> None:
    images = _images(4)
    vae = build_demo_pipeline(seed=1).vae
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    recipe = DecoderRecipe(steps=2, batch=2, warmup=1)
    finetune_decoder(vae, images, recipe, VaeRecipe(), 3, StageCheckpoint(tmp_path / "d.pt"), print)
    after = vae.state_dict()
    encoder = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    decoder = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert sum(not torch.equal(before[k], after[k]) for k in decoder) > len(decoder) // 2


def test_denoiser_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    scenes = [scene for _, _, scene in dataset(6, seed=3)]
    generator = torch.Generator().manual_seed(0)
    latents = (torch.randn((6, 4, 16, 16), generator=generator), torch.full((6, 4, 16, 16), 0.1))
    recipe = DenoiserRecipe(steps=4, batch=2, checkpoint_every=2, warmup=2)

    def run(checkpoint: StageCheckpoint, log: Callable[[str], None]) -> tuple[Any, Any]:
        pipe = build_demo_pipeline(seed=1)
        return train_denoiser(
            pipe.unet,
            SdConditioner(pipe.tokenizer, pipe.text_encoder),
            latents,
            scenes,
            recipe,
            9,
            checkpoint,
            log,
        )

    straight_unet, straight_text = run(StageCheckpoint(tmp_path / "a.pt"), lambda _: None)
    checkpoint = StageCheckpoint(tmp_path / "b.pt")
    with pytest.raises(_Interrupt):
        run(checkpoint, _stop_at_first_save)
    resumed_unet, resumed_text = run(checkpoint, lambda _: None)
    straight_text, resumed_text = straight_text["text_encoder"], resumed_text["text_encoder"]
    for straight, resumed in ((straight_unet, resumed_unet), (straight_text, resumed_text)):
        for name, value in straight.state_dict().items():
            assert torch.equal(value, resumed.state_dict()[name]), name


def test_a_warm_restart_continues_a_finished_run_to_the_bytes_of_a_straight_one(
    tmp_path: Path,
) -> None:
    """A model trained with one cycle resumes into the restart cycle: the same weights as
    training both cycles in one go, so one command still rebuilds it from its seed."""
    scenes = [scene for _, _, scene in dataset(6, seed=3)]
    generator = torch.Generator().manual_seed(0)
    latents = (torch.randn((6, 4, 16, 16), generator=generator), torch.full((6, 4, 16, 16), 0.1))
    first = DenoiserRecipe(steps=4, batch=2, checkpoint_every=2, warmup=2)
    both = replace(first, steps=6, restart_at=4, restart_rate=2e-4)

    def run(recipe: DenoiserRecipe, checkpoint: StageCheckpoint, log: Callable[[str], None]) -> Any:
        pipe = build_demo_pipeline(seed=1)
        conditioner = SdConditioner(pipe.tokenizer, pipe.text_encoder)
        return train_denoiser(pipe.unet, conditioner, latents, scenes, recipe, 9, checkpoint, log)

    straight, _ = run(both, StageCheckpoint(tmp_path / "a.pt"), lambda _: None)
    checkpoint = StageCheckpoint(tmp_path / "b.pt")
    once, _ = run(first, checkpoint, lambda _: None)
    messages: list[str] = []
    restarted, _ = run(both, checkpoint, messages.append)
    assert messages[0] == "denoiser: resuming at step 4"
    changed = 0
    for name, value in straight.state_dict().items():
        assert torch.equal(value, restarted.state_dict()[name]), name
        changed += not torch.equal(value, once.state_dict()[name])
    assert changed > 0  # the restart trained on


def test_the_restart_cycle_leaves_the_first_cycle_alone_and_decays_to_a_tenth() -> None:
    one = DenoiserRecipe(steps=9_000, warmup=200, learning_rate=1e-3)
    two = replace(one, steps=14_000, restart_at=9_000, restart_rate=4e-4)
    for step in (0, 199, 4_500, 8_999):
        assert _learning_rate(step, two) == _learning_rate(step, one)
    assert _learning_rate(8_999, one) == pytest.approx(1e-4, rel=1e-3)
    assert _learning_rate(9_000, two) == pytest.approx(4e-4)
    assert _learning_rate(11_500, two) == pytest.approx(4e-4 * 0.55)
    assert _learning_rate(13_999, two) == pytest.approx(4e-5, rel=1e-3)


def test_captions_drop_attributes_and_empty_some_with_a_seed() -> None:
    scenes = [scene for _, _, scene in dataset(400, seed=4)]
    recipe = DenoiserRecipe(empty_caption=0.1, attribute_dropout=0.15)
    captioner, again = Captioner(recipe, 1), Captioner(recipe, 1)
    texts = [captioner(s) for s in scenes]
    assert texts == [again(s) for s in scenes]
    empty = texts.count("") / len(texts)
    assert 0.05 < empty < 0.15
    full = sum(t == s.caption() for t, s in zip(texts, scenes, strict=True)) / len(texts)
    assert 0.3 < full < 0.5  # (1 − 0.1) · 0.85⁵ ≈ 0.40


def test_python_random_state_round_trips() -> None:
    rng = random.Random(7)
    rng.random()
    saved = python_random_state(rng)
    expected = [rng.random() for _ in range(5)]
    other = random.Random(0)
    restore_python_random(other, saved)
    assert [other.random() for _ in range(5)] == expected


def test_quick_recipe_is_a_smaller_copy_of_the_shipped_one() -> None:
    from ostaf.world.train import default_recipe

    full, quick = default_recipe(), default_recipe(quick=True)
    assert quick.images < full.images and quick.denoiser.steps < full.denoiser.steps
    assert replace(quick.vae, steps=full.vae.steps, checkpoint_every=full.vae.checkpoint_every) == (
        full.vae
    )


def test_the_xl_recipe_restarts_and_its_quick_copy_does_too() -> None:
    from ostaf.world.train import DEMO_XL, default_recipe

    full, quick = default_recipe(model=DEMO_XL), default_recipe(quick=True, model=DEMO_XL)
    assert 0 < full.denoiser.restart_at < full.denoiser.steps
    assert 0 < quick.denoiser.restart_at < quick.denoiser.steps < full.denoiser.steps
    assert default_recipe().denoiser.restart_at == 0  # the first model: one cycle


def test_the_shipped_xl_model_records_the_recipe_that_rebuilds_it() -> None:
    import json
    from dataclasses import asdict

    from ostaf.models.demo_model_xl import DEMO_XL_VERSION, SHIPPED_DEMO_XL_DIR
    from ostaf.world.train import DEMO_XL, default_recipe

    record = json.loads((SHIPPED_DEMO_XL_DIR / "ostaf_demo.json").read_text())
    assert record["version"] == DEMO_XL_VERSION
    assert record["recipe"]["denoiser"] == asdict(default_recipe(model=DEMO_XL).denoiser)


def test_an_xl_model_trains_at_another_size_and_says_so(tmp_path: Path) -> None:
    """`--size 96` draws the scenes at 96 px and gives a U-Net of 24×24 latents, which the
    app loads as a 96-px SDXL model; a cached 64-px set is drawn again, not reused."""
    from ostaf.models.base_model import load_base_model
    from ostaf.models.demo_model_xl import DEMO_XL_VERSION
    from ostaf.world.train import DEMO_XL, Recipe, Run, train, training_data

    images, _ = training_data(Run(tmp_path / "work", 5), 4)
    assert images.shape == (4, 64, 64, 3)
    recipe = Recipe(
        images=4,
        denoiser=DenoiserRecipe(steps=2, batch=2, checkpoint_every=2, warmup=1),
        evaluation_prompts=1,
    )
    out = tmp_path / "xl96"
    record = train(out, tmp_path / "work", 5, recipe, DEMO_XL, size=96)
    drawn = np.load(tmp_path / "work" / "images.npy")
    assert drawn.shape == (4, 96, 96, 3)
    again, _ = training_data(Run(tmp_path / "work", 5), 4, 96)  # the same size: reused
    assert np.array_equal(again, drawn) and again.flags.writeable
    assert record["architecture"]["latent_size"] == 24
    assert "96 px" in record["name"] and record["version"] == f"{DEMO_XL_VERSION}-96px"
    model = load_base_model(out, device="cpu")
    assert model.family.label == "Stable Diffusion XL" and model.resolution == 96


def test_the_training_command_refuses_a_size_or_device_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.world.train import main

    for argv, says in (
        (["--size", "100"], "--size 100: give a multiple of 32 px"),
        (["--size", "96"], "only the SDXL-shaped model (demo-xl) takes a size"),
        (["--device", "tpu"], "device 'tpu' is unknown"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(["--out", str(tmp_path / "m"), "--work", str(tmp_path / "w"), *argv])
        assert stopped.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
