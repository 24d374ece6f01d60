"""SDXL through every path, on a tiny SDXL-shaped model (tests/core/sdxl_tiny.py): loading a
folder and an SGM single file, tuning with the pooled embedding and size/crop ids, λ, renders
a plain StableDiffusionXLPipeline reproduces, batch grids, LoRA exports diffusers uses in full,
refusals across families, and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, StableDiffusionXLPipeline
from PIL import Image
from safetensors import safe_open

from ostaf.cli.main import main
from ostaf.errors import IncompatibleModelError, SettingsError
from ostaf.images import load_reference
from ostaf.interop.lora_export import export_lora
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_file import Attribute, load_attribute, save_attribute
from ostaf.library.attribute_meta import read_meta
from ostaf.method.hypernetwork import delta_weight
from ostaf.method.memory import plan_tuning_memory
from ostaf.method.offsets import offset_layers, set_terms
from ostaf.method.regions import BLOCKS, AttributeKind, Region, tuning_prompt
from ostaf.method.tuning import TuningResult, _Batch, _noisy_samples, _prepare, tune, unet_inputs
from ostaf.models.base_model import BaseModel, load_base_model
from ostaf.render.batch_plan import AttributeChoice, BatchJob, BatchRequest
from ostaf.render.rendering import apply_attributes, make_scheduler, render
from ostaf.requests import (
    AppliedAttribute,
    ModelChoice,
    RenderJob,
    RenderSettings,
    TuningSettings,
)
from ostaf.service import OstafService
from tests.core import ldm_keys, sdxl_tiny
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401
from tests.core.test_checkpoints import no_network  # noqa: F401

PROMPT = "a photo of a sks object"
TOLERANCE = 1e-5  # U-Net outputs of our merge vs diffusers' LoRA: measured ≤ 1e-6
PIXEL_TOLERANCE = 2  # of 255: renders through two pipelines (same kernels in practice: 0)
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]


@pytest.fixture(scope="module")
def reference(sdxl_session: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.core.conftest import draw_reference

    path = tmp_path_factory.mktemp("xl-ref") / "reference.png"
    draw_reference().save(path)
    return path


@pytest.fixture(scope="module")
def tuned(sdxl_session: BaseModel, reference: Path) -> tuple[TuningResult, dict]:
    """An appearance attribute tuned on the tiny SDXL model, and the U-Net's state before."""
    model = sdxl_session
    model.merger.restore()
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    settings = TuningSettings(
        kind=AttributeKind.APPEARANCE, steps=60, seed=1, learning_rate=3e-3, preview_every=60
    )
    return tune(model, load_reference(reference, model.resolution), settings, "XL glaze"), before


@pytest.fixture(scope="module")
def shape(sdxl_session: BaseModel, reference: Path) -> Attribute:
    settings = TuningSettings(
        kind=AttributeKind.SHAPE, steps=8, seed=2, learning_rate=3e-3, token="ohwx"
    )  # applied with the glaze: a word of its own
    reference_image = load_reference(reference, sdxl_session.resolution)
    return tune(sdxl_session, reference_image, settings, "XL pose").attribute


# --- loading --------------------------------------------------------------------------------


def test_folder_and_sgm_single_file_load_the_same_model_offline(
    sdxl: BaseModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: list[str],  # noqa: F811
) -> None:
    from ostaf.models.families import sdxl as sdxl_family
    from ostaf.models.single_file import load_single_file

    models = sdxl_tiny.build_tiny_sdxl(seed=0)  # the fixture folder's model, again
    state = sdxl_tiny.sgm_state_dict(models)
    assert any(k.startswith("conditioner.embedders.1.model.transformer.resblocks.") for k in state)
    path = sdxl_tiny.save_checkpoint(state, tmp_path / "tiny-xl.safetensors")
    config = sdxl_tiny.write_config_dir(models, tmp_path / "config")

    pipe = load_single_file(path, torch.float32, config_dir=config)

    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    for name in sdxl_tiny.COMPONENTS:  # every tensor equal
        got, want = getattr(pipe, name).state_dict(), models[name].state_dict()
        assert sorted(got) == sorted(want), name
        assert [k for k in want if not torch.equal(got[k], want[k])] == [], name
    assert pipe.tokenizer("a photo of a cat")["input_ids"] == CAT_IDS
    assert pipe.tokenizer_2("a photo of a cat")["input_ids"] == CAT_IDS
    assert pipe.tokenizer_2.pad_token == "!" and pipe.tokenizer.pad_token == "<|endoftext|>"

    monkeypatch.setattr(type(sdxl_family.FAMILY), "config_dir", lambda family: config)
    loaded = load_base_model(path, device="cpu")
    assert loaded.family is sdxl.family and loaded.family.label == "Stable Diffusion XL"
    assert (loaded.architecture, loaded.fingerprint) == (sdxl.architecture, sdxl.fingerprint)


# --- tuning ---------------------------------------------------------------------------------


def test_conditioning_is_what_the_pipeline_renders_with(sdxl: BaseModel) -> None:
    pipe = sdxl.pipe
    cond = sdxl.family.encode_prompt(pipe, PROMPT, torch.device("cpu"), (64, 64))
    hidden, _, pooled, _ = pipe.encode_prompt(
        PROMPT, device="cpu", do_classifier_free_guidance=False
    )
    ids = pipe._get_add_time_ids(
        (64, 64), (0, 0), (64, 64), hidden.dtype, pipe.text_encoder_2.config.projection_dim
    )
    assert torch.equal(cond.hidden, hidden) and cond.hidden.shape == (1, 77, sum(sdxl_tiny.WIDTHS))
    assert torch.equal(cond.added["text_embeds"], pooled)
    assert torch.equal(cond.added["time_ids"], ids)


@torch.no_grad()
def _eval_loss(model: BaseModel, batch: _Batch, factors: dict | None) -> float:
    """ε-prediction loss on fixed timesteps and noises, with the SDXL extra inputs."""
    scheduler = DDPMScheduler.from_config(model.pipe.scheduler.config)
    g = torch.Generator().manual_seed(123)
    t = torch.linspace(50, 950, 12).long()
    x0 = batch.latents[:1].expand(12, -1, -1, -1)
    noise = torch.randn(x0.shape, generator=g)
    text, added = unet_inputs(batch, 12, torch.float32)
    with offset_layers(model.unet, list(factors or {})) as wrappers:
        if factors:
            set_terms(wrappers, [(factors, 1.0)])
        noisy = scheduler.add_noise(x0, noise, t)
        pred = model.unet(noisy, t, encoder_hidden_states=text, added_cond_kwargs=added).sample
    return float(((pred - noise) ** 2).mean())


def test_tuning_leaves_the_base_untouched_and_lowers_the_loss(
    sdxl: BaseModel, tuned: tuple[TuningResult, dict], reference: Path, tmp_path: Path
) -> None:
    result, before = tuned
    after = sdxl.unet.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    image = load_reference(reference, sdxl.resolution)
    batch = _prepare(sdxl, image, tuning_prompt(AttributeKind.APPEARANCE, "sks"), False)
    assert batch.added is not None and set(batch.added) == {"text_embeds", "time_ids"}
    base, tuned_loss = (
        _eval_loss(sdxl, batch, None),
        _eval_loss(sdxl, batch, result.attribute.factors),
    )
    assert tuned_loss < 0.95 * base, (base, tuned_loss)
    meta = result.attribute.meta
    assert meta.tuning["family"] == "sdxl" and meta.tuning["resolution"] == 64
    assert result.memory is not None  # the preflight traced the SDXL U-Net, extra inputs too

    saved = save_attribute(tmp_path / "xl.safetensors", result.attribute)
    loaded = load_attribute(saved)
    assert loaded.meta.to_json() == meta.to_json()
    assert all(
        torch.equal(loaded.factors[p][0], a) and torch.equal(loaded.factors[p][1], b)
        for p, (a, b) in result.attribute.factors.items()
    )


def test_regions_follow_the_kind(
    sdxl: BaseModel, tuned: tuple[TuningResult, dict], shape: Attribute
) -> None:
    projections = [
        n for n, _ in sdxl.unet.named_modules() if n.endswith(("to_q", "to_k", "to_v", "to_out.0"))
    ]
    up = sorted(p for p in projections if p.startswith("up_blocks."))
    down = sorted(p for p in projections if p.startswith(("down_blocks.", "mid_block.")))
    assert tuned[0].attribute.meta.targets == up
    assert shape.meta.targets == down  # shape: the encoder and the mid block
    # The deepest level has two transformer layers per block: both are tuned.
    assert any(".transformer_blocks.1." in p for p in shape.meta.targets)


def test_memory_preflight_traces_sdxl_and_turns_on_checkpointing_when_short(
    sdxl: BaseModel,
) -> None:
    common = {
        "unet_config": sdxl.unet.config,
        "resolution": 64,
        "dtype": torch.float32,
        "region": sdxl.family.region(AttributeKind.SHAPE),
        "timesteps_per_step": 4,
        "resident_bytes": 0,
        "added_inputs": sdxl.family.added_inputs(sdxl.unet.config),
    }
    assert common["added_inputs"] == {"text_embeds": sdxl_tiny.PROJECTION, "time_ids": 6}
    roomy = plan_tuning_memory(**common, budget_bytes=None)  # type: ignore[arg-type]
    assert (roomy.timesteps_per_pass, roomy.checkpointing) == (4, False)
    one = plan_tuning_memory(**common, budget_bytes=None, timesteps_per_pass=1)  # type: ignore[arg-type]
    short = plan_tuning_memory(**common, budget_bytes=one.estimate.total - 1)  # type: ignore[arg-type]
    assert short.checkpointing and short.fits


def test_tuning_size_is_chosen_checked_and_recorded(sdxl: BaseModel, reference: Path) -> None:
    assert sdxl.tuning_sizes() == (64, 128)  # half to twice native, in steps of 8 latents
    settings = TuningSettings(kind=AttributeKind.STYLE, steps=2, size=128)
    result = tune(sdxl, load_reference(reference, 128), settings)
    assert result.attribute.meta.tuning["resolution"] == 128
    with pytest.raises(SettingsError, match=r"tuning size 96 px .* multiple of 64 from 64 to 128"):
        sdxl.tuning_size(96)
    with pytest.raises(SettingsError, match="prepared at 64 px but tuning is at 128 px"):
        tune(sdxl, load_reference(reference, 64), settings)


# --- rendering --------------------------------------------------------------------------------


def test_lambda_zero_is_bit_exact_and_a_plain_sdxl_pipeline_reproduces_renders(
    sdxl: BaseModel, sdxl_folder: Path, tuned: tuple[TuningResult, dict], shape: Attribute
) -> None:
    look = tuned[0].attribute
    settings = RenderSettings(
        prompt=PROMPT, negative_prompt="blurry", seeds=[5], steps=4, guidance=6.0, sampler="euler"
    )
    base = render(sdxl, settings)[0].image
    zero = render(sdxl, settings, [(look, 0.0), (shape, 0.0)])[0].image
    both = render(sdxl, settings, [(look, 0.8), (shape, 1.2)])[0].image
    assert zero.tobytes() == base.tobytes()
    assert both.tobytes() != base.tobytes()
    assert render(sdxl, settings)[0].image.tobytes() == base.tobytes()  # nothing stays merged

    plain = StableDiffusionXLPipeline.from_pretrained(sdxl_folder)
    plain.scheduler = make_scheduler("euler", plain.scheduler.config, settings.schedule)
    plain.set_progress_bar_config(disable=True)
    with torch.no_grad():
        for attribute, lam in ((look, 0.8), (shape, 1.2)):
            for path, (a, b) in attribute.factors.items():
                plain.unet.get_submodule(path).weight += lam * delta_weight(a, b)
    theirs = plain(
        PROMPT,
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=6.0,
        generator=torch.Generator("cpu").manual_seed(5),
    ).images[0]
    difference = np.abs(np.asarray(both, np.int16) - np.asarray(theirs, np.int16))
    assert theirs.size == both.size == (64, 64)
    assert difference.max() <= PIXEL_TOLERANCE


def test_render_job_writes_the_a1111_parameters_at_an_sdxl_size(
    sdxl: BaseModel, tuned: tuple[TuningResult, dict], tmp_path: Path
) -> None:
    path = save_attribute(tmp_path / "look.safetensors", tuned[0].attribute)
    _, width, height = sdxl.family.offered_sizes(sdxl.resolution)[1]  # "Landscape 4:3"
    assert (width, height) == (72, 56)
    service = OstafService()
    service._model, service._model_choice = sdxl, ModelChoice(str(sdxl.source), "cpu")
    settings = RenderSettings(
        prompt=PROMPT,
        negative_prompt="blur",
        seeds=[3],
        steps=3,
        width=width,
        height=height,
        attributes=[AppliedAttribute(path, 1.5)],
    )
    (png,) = service.render(RenderJob(settings, tmp_path / "out", service._model_choice)).paths
    assert Image.open(png).size == (72, 56)
    parameters, record = read_png_metadata(png)
    assert parameters is not None and record is not None
    parsed = parse_a1111(parameters)
    assert (parsed["prompt"], parsed["negative_prompt"]) == (PROMPT, "blur")
    values = parsed["values"]
    # A1111's order; "Model hash" is the checkpoint file's SHA-256, so a folder has none.
    hashed = ["Model hash"] if sdxl.file_sha256 else []
    assert list(values)[: 7 + len(hashed)] == [
        *("Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size"),
        *hashed,
        "Model",
    ]
    assert values["Size"] == "72x56"  # A1111 writes width x height
    assert values["Model"] == "tiny-sdxl" and values["OSTAF lambda"] == "1.5"
    assert (record["width"], record["height"]) == (72, 56)


def test_batch_grid_and_contact_sheet_on_sdxl(
    sdxl: BaseModel, tuned: tuple[TuningResult, dict], shape: Attribute, tmp_path: Path
) -> None:
    look = save_attribute(tmp_path / "look.safetensors", tuned[0].attribute)
    pose = save_attribute(tmp_path / "pose.safetensors", shape)
    service = OstafService()
    service._model, service._model_choice = sdxl, ModelChoice(str(sdxl.source), "cpu")
    request = BatchRequest(
        prompts=[PROMPT],
        seeds=[1],
        out_dir=tmp_path / "grid",
        combinations=[[AttributeChoice(look)], [AttributeChoice(pose)]],
        intensities=[0.5, 1.0],
        steps=2,
        contact_sheet=True,
    )
    outcome = service.batch(BatchJob(request, service._model_choice))
    assert len(outcome.written) == 4 and outcome.skipped == [] and outcome.sheet is not None
    assert all(Image.open(p).size == (64, 64) for p in outcome.written)
    assert Image.open(outcome.sheet).size[0] > 2 * 64
    again = service.batch(BatchJob(request, service._model_choice))
    assert again.written == [] and len(again.skipped) == 4


def test_attributes_are_refused_across_families(
    sdxl: BaseModel, model: BaseModel, tuned: tuple[TuningResult, dict]
) -> None:
    sd1_attribute = make_attribute(model, name="Demo look")
    with pytest.raises(IncompatibleModelError) as info:
        apply_attributes(sdxl, [(sd1_attribute, 1.0)])
    message = str(info.value)
    assert "Stable Diffusion 1.x" in message and "Stable Diffusion XL" in message
    assert "'Demo look'" in message and "\n" not in message
    with pytest.raises(IncompatibleModelError, match=r"tuned on a Stable Diffusion XL model .*"
                       r"is a Stable Diffusion 1\.x model"):  # fmt: skip
        apply_attributes(model, [(tuned[0].attribute, 1.0)])
    assert sdxl.merger.merged_paths == [] and model.merger.merged_paths == []


# --- LoRA export ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def everywhere(sdxl_session: BaseModel) -> Attribute:
    """Random factors on every attention projection (down, mid and up): every name pattern."""
    return make_attribute(
        sdxl_session, AttributeKind.STYLE, seed=5, name="XL ink", scale=0.3, default_lambda=1.3,
        region=Region(blocks=BLOCKS),
    )  # fmt: skip


@pytest.fixture(scope="module")
def plain_xl(sdxl_folder: Path) -> StableDiffusionXLPipeline:
    """The tiny SDXL model loaded by diffusers alone, as another tool would."""
    return StableDiffusionXLPipeline.from_pretrained(sdxl_folder)


def _unet_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 7, sum(sdxl_tiny.WIDTHS), generator=g)
    added = {
        "text_embeds": torch.randn(2, sdxl_tiny.PROJECTION, generator=g),
        "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2),
    }
    return latents, torch.tensor([100, 700]), context, added


@torch.no_grad()
def _run_unet(unet: torch.nn.Module) -> torch.Tensor:
    x, t, c, added = _unet_inputs()
    return unet(x, t, c, added_cond_kwargs=added).sample


@pytest.mark.parametrize("fmt", ["kohya", "diffusers"])
def test_diffusers_sdxl_pipeline_uses_every_key_and_matches_our_unet(
    sdxl: BaseModel,
    everywhere: Attribute,
    plain_xl: StableDiffusionXLPipeline,
    diffusers_warnings: list[str],
    tmp_path: Path,
    fmt: str,
) -> None:
    from peft.utils import get_peft_model_state_dict

    done = export_lora(everywhere, tmp_path / f"ink-{fmt}.safetensors", fmt)  # type: ignore[arg-type]
    assert done.family is sdxl.family and done.target == "Stable Diffusion XL models"
    with safe_open(str(done.path), framework="pt") as handle:
        keys, metadata = set(handle.keys()), handle.metadata()
    if fmt == "kohya":  # the SGM names kohya writes for SDXL
        assert all(k.startswith("lora_unet_") for k in keys)
        assert any(k.startswith("lora_unet_input_blocks_7_1_") for k in keys)
        assert any(k.startswith("lora_unet_middle_block_1_") for k in keys)
        assert any(k.startswith("lora_unet_output_blocks_0_1_") for k in keys)
        assert not any("down_blocks" in k or "up_blocks" in k for k in keys)
    assert metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    assert metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert metadata["modelspec.resolution"] == "64x64"
    plain_xl.load_lora_weights(str(done.path), adapter_name=fmt)
    try:
        plain_xl.set_adapters([fmt])
        theirs = _run_unet(plain_xl.unet)
        loaded = get_peft_model_state_dict(plain_xl.unet, adapter_name=fmt)
    finally:
        plain_xl.delete_adapters(fmt)
    assert set(loaded) == {f"{p}.lora_{s}.weight" for p in everywhere.factors for s in "AB"}
    for path, (_, b) in everywhere.factors.items():
        assert torch.equal(loaded[f"{path}.lora_A.weight"], b)
    sdxl.merger.apply([(everywhere.factors, 1.3)])
    try:
        ours = _run_unet(sdxl.unet)
    finally:
        sdxl.merger.restore()
    assert (ours - _run_unet(plain_xl.unet)).abs().max() > 0.05  # the LoRA changes the output
    assert (theirs - ours).abs().max().item() <= TOLERANCE
    assert [m for m in diffusers_warnings if "text_encoder" not in m] == []


# --- the command line --------------------------------------------------------------------------


def test_cli_tunes_renders_and_exports_on_sdxl(
    home: Path,
    sdxl_folder: Path,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = ["--model", str(sdxl_folder), "--device", "cpu"]
    assert main(["sizes", "--model", str(sdxl_folder)]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("Stable Diffusion XL, native 64x64 px")
    assert "72x56  Landscape 4:3" in listed and "tuning sizes (tune --size PX): 64, 128" in listed

    out = tmp_path / "look.safetensors"
    tune = ["tune", str(reference), "--attribute", "appearance", "--out", str(out), "--steps", "2"]
    assert main([*tune, "--size", "96", *model]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "tuning size 96 px does not fit tiny-sdxl" in error
    assert not out.exists()
    assert main([*tune, "--size", "128", *model]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert read_meta(out).tuning["resolution"] == 128

    render_args = ["render", "--prompt", PROMPT, "--out", str(tmp_path / "imgs")]
    applied = ["--attribute", f"{out}:0.7", "--size", "56x72", "--steps", "2"]
    assert main([*render_args, *applied, *model]) == 0
    (png,) = [Path(p) for p in capsys.readouterr().out.split()]
    assert Image.open(png).size == (56, 72)

    lora = tmp_path / "look-lora.safetensors"
    assert main(["export-lora", str(out), "--out", str(lora)]) == 0
    captured = capsys.readouterr()
    # Appearance learns its word by default: the word's embedding is written beside the LoRA,
    # named after the word.
    word = tmp_path / "sks.safetensors"
    assert captured.out.split() == [str(lora), str(word)] and word.is_file()
    assert "for Stable Diffusion XL models" in captured.err

    demo = ["--model", "demo", "--device", "cpu"]
    assert main([*render_args, "--attribute", str(out), "--steps", "2", *demo]) == 2
    error = capsys.readouterr().err
    assert "Stable Diffusion XL" in error and "Stable Diffusion 1.x" in error
    assert error.count("\n") == 1


# --- the SDXL files artists have ---------------------------------------------------------------


@pytest.fixture
def xl_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model's config folder in place of the shipped SDXL one (as a real file's
    would be the shipped folder)."""
    from ostaf.models.families import sdxl as sdxl_family

    config = sdxl_tiny.write_config_dir(sdxl_tiny.build_tiny_sdxl(seed=0), tmp_path / "config")
    monkeypatch.setattr(type(sdxl_family.FAMILY), "config_dir", lambda family: config)
    return config


def _xl_file(tmp_path: Path, name: str, **extra: torch.Tensor) -> Path:
    state = sdxl_tiny.sgm_state_dict(sdxl_tiny.build_tiny_sdxl(seed=0))
    return sdxl_tiny.save_checkpoint({**state, **extra}, tmp_path / f"{name}.safetensors")


def test_zero_terminal_snr_v_prediction_files_run_as_trained(
    xl_configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NoobAI-XL v-pred style: `v_pred` and `ztsnr` keys. ComfyUI samples it with zero
    terminal SNR; so do renders here (rescaled betas, trailing timesteps) and tuning."""
    from ostaf.method.tuning import training_scheduler

    path = _xl_file(tmp_path, "noob-vpred", v_pred=torch.empty(0), ztsnr=torch.empty(0))
    assert main(["sizes", "--model", str(path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "Stable Diffusion XL, native 64x64 px, v-prediction, zero terminal SNR"

    model = load_base_model(path, device="cpu")
    config = model.pipe.scheduler.config
    assert config.prediction_type == "v_prediction" and config.rescale_betas_zero_snr
    assert config.timestep_spacing == "trailing"
    assert model.kind_label == "Stable Diffusion XL, v-prediction, zero terminal SNR"

    # Tuning: the last timestep is pure noise, so its v-target is the negated latents.
    training = training_scheduler(model)
    assert training.alphas_cumprod[-1].item() == 0.0
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    batch = _Batch(latents=x0, weights=None, text=torch.zeros(1, 77, sum(sdxl_tiny.WIDTHS)))
    sampler = torch.Generator().manual_seed(1)
    noisy, _, target, _ = _noisy_samples(
        batch, training, sampler, 1, torch.device("cpu"), (999, 1000)
    )
    assert torch.equal(target, -x0) and not torch.allclose(noisy, x0)

    # Rendering with the model's own schedule: from the last timestep, named for A1111.
    settings = RenderSettings(prompt=PROMPT, seeds=[2], steps=4, sampler="euler")
    settings.schedule = "model"
    done = render(model, settings)[0]
    assert np.asarray(done.image).any() and done.warnings == []
    values = parse_a1111(done.parameters)["values"]
    assert values["Noise Schedule"] == "Zero Terminal SNR"
    assert values["Schedule type"] == "Simple"  # trailing: t = 999, 749, 499, 249


def test_v_prediction_without_ztsnr_keeps_the_usual_schedule(
    xl_configs: Path, tmp_path: Path
) -> None:
    model = load_base_model(_xl_file(tmp_path, "vpred", v_pred=torch.empty(0)), device="cpu")
    config = model.pipe.scheduler.config
    assert config.prediction_type == "v_prediction" and not config.rescale_betas_zero_snr
    assert model.kind_label == "Stable Diffusion XL, v-prediction"


def test_edm_files_are_refused_before_loading(
    xl_configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _xl_file(tmp_path, "playground", edm_mean=torch.zeros(1, 4, 1, 1),
                    edm_std=torch.ones(1, 4, 1, 1))  # fmt: skip
    for command in (["sizes", "--model", str(path)], ["render", "--prompt", "x", "--model",
                    str(path), "--device", "cpu", "--out", str(tmp_path / "o")]):  # fmt: skip
        assert main(command) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "playground.safetensors" in error
        assert "an EDM model (Playground v2.5 style" in error
    assert not (tmp_path / "o").exists()


def test_clip_l_keys_without_text_model_load(xl_configs: Path, tmp_path: Path) -> None:
    """kohya's saver under transformers 5 writes SDXL's CLIP-L without `text_model.`."""
    from ostaf.models.single_file import load_single_file

    models = sdxl_tiny.build_tiny_sdxl(seed=0)
    state = sdxl_tiny.sgm_state_dict(models)
    standard = ldm_keys.clip_to_ldm(models["text_encoder"].state_dict(), ldm_keys.SDXL_CLIP)
    legacy = ldm_keys.clip_to_ldm(models["text_encoder"].state_dict(), ldm_keys.SDXL_CLIP_LEGACY)
    assert not any(".text_model." in k for k in legacy) and len(legacy) == len(standard)
    kept = {k: v for k, v in state.items() if k not in standard}
    path = sdxl_tiny.save_checkpoint({**kept, **legacy}, tmp_path / "kohya-xl.safetensors")

    pipe = load_single_file(path, torch.float32, config_dir=xl_configs)

    for name in sdxl_tiny.COMPONENTS:  # every tensor equal, both text encoders included
        got, want = getattr(pipe, name).state_dict(), models[name].state_dict()
        assert sorted(got) == sorted(want), name
        assert [k for k in want if not torch.equal(got[k], want[k])] == [], name


def test_tuning_size_is_refused_before_the_model_loads(
    xl_configs: Path,
    sdxl_folder: Path,
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The size check reads the single file's header or the folder's configs: a refusal
    costs no load (a real SDXL file is 7 GB)."""
    import ostaf.service

    loads: list[object] = []
    monkeypatch.setattr(ostaf.service, "load_base_model", lambda *a, **k: loads.append(a))
    single = _xl_file(tmp_path, "tiny-xl-file")
    out = tmp_path / "look.safetensors"
    for source, name in ((single, "tiny-xl-file"), (sdxl_folder, "tiny-sdxl")):
        tune = ["tune", str(reference), "--attribute", "style", "--out", str(out)]
        assert main([*tune, "--size", "96", "--model", str(source), "--device", "cpu"]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1
        assert f"tuning size 96 px does not fit {name}: use a multiple of 64 from 64 to 128" in (
            error
        )
    assert loads == [] and not out.exists()


def test_cpu_loads_are_checked_against_the_machines_memory_first(
    sdxl: BaseModel, sdxl_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ostaf.errors import OutOfMemoryError
    from ostaf.models import base_model, load_memory

    # What the preflight counts is what a load holds: every weight of the loaded model.
    counted = load_memory.weight_parameters(sdxl_folder, sdxl.family)
    modules = (sdxl.unet, sdxl.pipe.vae, *sdxl.text_encoders)
    held = sum(p.numel() for m in modules for p in m.parameters())
    assert counted == held
    need = load_memory.load_bytes(counted, torch.float32)
    # SDXL 1.0 (3,468,837,867 weights) in fp32: 19.9 GB measured at the peak of a CPU load.
    assert 19.9e9 <= load_memory.load_bytes(3_468_837_867, torch.float32) <= 20.9e9

    def machine(total: int, swap: int) -> None:
        memory = load_memory.HostMemory(total, total, swap)
        monkeypatch.setattr(load_memory, "host_memory", lambda: memory)

    loads: list[object] = []
    monkeypatch.setattr(base_model, "_load_folder", lambda *a: loads.append(a))
    machine(need // 2, need // 4)
    with pytest.raises(OutOfMemoryError) as info:
        load_base_model(sdxl_folder, device="cpu")
    message = str(info.value)
    assert "\n" not in message and "tiny-sdxl (Stable Diffusion XL) needs about" in message
    assert "on the CPU in float32" in message and "GPU" in message and loads == []

    monkeypatch.undo()
    machine(need // 2, need)  # enough with swap: loaded, with a note that it will swap
    notes: list[str] = []
    model = load_base_model(sdxl_folder, device="cpu", progress=lambda p: notes.append(p.note))
    assert model.family is sdxl.family
    assert [n for n in notes if n] == [next(n for n in notes if "will swap" in n)]
