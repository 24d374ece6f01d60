"""Noise schedules named as A1111/Forge name them: ours are A1111's, the PNG says which one,
and recall, the CLI and batch resumption carry it.

A1111 1.9+ reads "Sampler: DPM++ 2M" without a "Schedule type" as "Automatic", which is Karras
for DPM++ 2M (modules/sd_samplers_kdiffusion.py: ('DPM++ 2M', …, {'scheduler': 'karras'})).
Its schedules, re-derived below from modules/sd_schedulers.py and k-diffusion's
get_sigmas_karras (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/5bbbda473fc87c161ec7f5351d78b8c43799d436/modules/sd_schedulers.py):
- Karras: σ_i = (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, ρ = 7, over the model's
  whole sigma range, then 0;
- Simple: the model's sigma at training step T−1−⌊x·T/n⌋ for x = 0…n−1, then 0;
- Uniform: k-diffusion's get_sigmas(n), timesteps T−1…0 in n even steps (log σ interpolated);
- SGM Uniform: the same over n + 1 even steps, the last dropped;
- DDIM: the sigmas at steps 1, 1 + ⌊T/n⌋, … below T, from the top.
A render with the model's own scheduler config ("model") names the one of these nearest to
what it sampled, so that A1111 does not fall back to Karras.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import DDIMScheduler
from PIL import Image, PngImagePlugin

from ostaf.cli.main import main
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata, write_png
from ostaf.models.base_model import BaseModel
from ostaf.models.single_file import model_config_dir
from ostaf.render.recall import recall_image
from ostaf.render.rendering import (
    a1111_schedule_label,
    make_scheduler,
    render,
    schedule_timesteps,
)
from ostaf.requests import RenderSettings
from tests.core.attribute_factory import one_torch_thread  # noqa: F401

RHO = 7.0


def _a1111_sigmas(schedule: str, steps: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5  # k-diffusion's CompVisDenoiser
    total = len(sigmas)
    if schedule == "karras":
        low, high = sigmas[0].item() ** (1 / RHO), sigmas[-1].item() ** (1 / RHO)
        ramp = torch.linspace(0, 1, steps)
        chosen = (high + ramp * (low - high)) ** RHO
    elif schedule in ("uniform", "sgm_uniform"):
        count = steps if schedule == "uniform" else steps + 1
        t = torch.linspace(total - 1, 0, count, dtype=torch.float64)[:steps]
        low = t.floor().long().clamp(max=total - 2)
        log = sigmas.double().log()
        chosen = (log[low] + (t - low) * (log[low + 1] - log[low])).exp().float()
    elif schedule == "ddim":
        chosen = torch.flip(sigmas[1 : total : max(total // steps, 1)], [0])
    else:
        stride = len(sigmas) / steps
        chosen = torch.stack([sigmas[-(1 + int(x * stride))] for x in range(steps)])
    return torch.cat([chosen, torch.zeros(1)])


def _config(name: str) -> dict:
    from ostaf.models.demo_model import demo_model_dir

    folder = demo_model_dir() if name == "demo" else model_config_dir(name)
    return dict(DDIMScheduler.load_config(folder / "scheduler"))


@pytest.mark.parametrize("config", ["sd15", "sd21", "demo"])
@pytest.mark.parametrize("sampler", ["euler", "dpmpp2m"])
@pytest.mark.parametrize("schedule", ["karras", "simple"])
@pytest.mark.parametrize("steps", [7, 25, 30])
def test_our_schedules_are_a1111s(config: str, sampler: str, schedule: str, steps: int) -> None:
    scheduler = make_scheduler(sampler, _config(config), schedule)
    timesteps = schedule_timesteps(sampler, schedule, steps, scheduler.config)
    if timesteps is None:
        scheduler.set_timesteps(steps)
    else:
        scheduler.set_timesteps(timesteps=timesteps)

    ours = torch.as_tensor(scheduler.sigmas, dtype=torch.float32)
    theirs = _a1111_sigmas(schedule, steps, scheduler.alphas_cumprod.float())
    if schedule == "simple":  # the same training steps, so the very same sigmas
        assert torch.equal(ours, theirs)
    else:  # the same formula, evaluated in float64 by diffusers and float32 here
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def _zero_snr_config() -> dict:
    """A NoobAI-style v-prediction SDXL config as loading sets it up (zero terminal SNR)."""
    config = _config("sdxl")
    config.update(prediction_type="v_prediction", rescale_betas_zero_snr=True)
    config.update(timestep_spacing="trailing")
    return config


@pytest.mark.parametrize(
    ("config", "sampler", "steps", "label", "schedule"),
    [
        ("demo", "euler", 4, "DDIM", "ddim"),  # "leading" with steps_offset 1
        ("sdxl", "euler", 25, "DDIM", "ddim"),
        ("sd15", "euler", 25, "Uniform", "uniform"),  # Euler's default spacing, "linspace"
        ("sd21", "dpmpp2m", 25, "SGM Uniform", "sgm_uniform"),  # DPM's "linspace"
        ("zero-snr", "euler", 25, "Simple", "simple"),  # "trailing"
        ("zero-snr", "dpmpp2m", 20, "Simple", "simple"),
    ],
)
def test_the_models_own_schedule_is_named_as_a1111_samples_it(
    config: str, sampler: str, steps: int, label: str, schedule: str
) -> None:
    settings = _zero_snr_config() if config == "zero-snr" else _config(config)
    scheduler = make_scheduler(sampler, settings, "model")
    scheduler.set_timesteps(steps)

    assert a1111_schedule_label(sampler, "model", scheduler) == label
    ours = torch.as_tensor(scheduler.sigmas, dtype=torch.float32)
    theirs = _a1111_sigmas(schedule, steps, scheduler.alphas_cumprod.float())
    # The same sigmas, up to the interpolation between training steps (≤ 0.2 % measured).
    assert ours.shape == theirs.shape and ours[-1] == theirs[-1] == 0
    assert (ours[:-1].log() - theirs[:-1].log()).abs().max() < 0.01


def _parameters(model: BaseModel, sampler: str, schedule: str) -> tuple[Image.Image, dict, dict]:
    settings = RenderSettings("a red circle", seeds=[3], steps=3, sampler=sampler)
    settings.schedule = schedule
    done = render(model, settings)[0]
    return done.image, parse_a1111(done.parameters)["values"], done.record


def test_the_png_names_the_schedule_a1111_needs(model: BaseModel) -> None:
    karras, values, record = _parameters(model, "dpmpp2m", "karras")
    assert values["Sampler"] == "DPM++ 2M" and values["Schedule type"] == "Karras"
    assert list(values).index("Schedule type") == list(values).index("Sampler") + 1
    assert record["schedule"] == "karras"

    _, values, record = _parameters(model, "euler", "simple")
    assert values["Schedule type"] == "Simple" and record["schedule"] == "simple"

    # DDIM has no schedule in A1111 either.
    _, values, record = _parameters(model, "ddim", "karras")
    assert "Schedule type" not in values and record["schedule"] == "model"
    # The model's own config is written as the A1111 schedule it sampled, else A1111 would
    # take "Automatic" (Karras for DPM++ 2M): the demo's "leading" steps are A1111's DDIM.
    _, values, record = _parameters(model, "euler", "model")
    assert values["Schedule type"] == "DDIM" and record["schedule"] == "model"
    own, values, record = _parameters(model, "dpmpp2m", "model")
    assert values["Schedule type"] not in ("", "Karras") and record["schedule"] == "model"

    simple_2m, _, _ = _parameters(model, "dpmpp2m", "simple")
    pictures = {image.tobytes() for image in (karras, own, simple_2m)}
    assert len(pictures) == 3  # the schedule really changes the sampling


def _png(tmp_path: Path, parameters: str, record: dict | None = None) -> Path:
    path = tmp_path / "image.png"
    if record is not None:
        return write_png(path, Image.new("RGB", (8, 8)), parameters, record)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_recall_round_trips_the_schedule(model: BaseModel, tmp_path: Path) -> None:
    settings = RenderSettings("a red circle", seeds=[3], steps=2, sampler="euler")
    settings.schedule = "simple"
    done = render(model, settings)[0]
    path = write_png(tmp_path / "ours.png", done.image, done.parameters, done.record)

    recalled = recall_image(path).settings
    assert (recalled.sampler, recalled.schedule) == ("euler", "simple")

    older = {k: v for k, v in done.record.items() if k != "schedule"}  # before schedules
    older["sampler"] = "dpmpp2m"
    recalled = recall_image(_png(tmp_path, done.parameters, older)).settings
    assert (recalled.sampler, recalled.schedule) == ("dpmpp2m", "model")


@pytest.mark.parametrize(
    ("pairs", "sampler", "schedule", "warning"),
    [
        ("Sampler: DPM++ 2M, Schedule type: Simple", "dpmpp2m", "simple", None),
        ("Sampler: DPM++ 2M", "dpmpp2m", "karras", None),  # A1111's "Automatic"
        ("Sampler: DPM++ 2M Karras", "dpmpp2m", "karras", None),  # A1111 before 1.9
        ("Sampler: Euler, Schedule type: Karras", "euler", "karras", None),
        ("Sampler: Euler", "euler", "karras", "'Automatic (Uniform)' is not available"),
        ("Sampler: Euler, Schedule type: Exponential", "euler", "karras", "'Exponential'"),
        ("Sampler: DDIM, Schedule type: Karras", "ddim", "karras", None),
    ],
)
def test_a1111_text_gives_sampler_and_schedule(
    tmp_path: Path, pairs: str, sampler: str, schedule: str, warning: str | None
) -> None:
    recalled = recall_image(_png(tmp_path, f"a cat\nSteps: 20, {pairs}, Seed: 5"))
    assert (recalled.settings.sampler, recalled.settings.schedule) == (sampler, schedule)
    schedule_warnings = [w for w in recalled.warnings if "schedule" in w]
    if warning is None:
        assert schedule_warnings == []
    else:
        assert len(schedule_warnings) == 1 and warning in schedule_warnings[0]


def test_cli_schedule_reaches_the_png_and_batch_tells_schedules_apart(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = ["--steps", "2", "--size", "32x32", "--guidance", "1", "--device", "cpu"]
    code = main(["render", "--prompt", "a red circle", "--out", str(tmp_path / "r"), *fast,
                 "--sampler", "euler", "--schedule", "simple"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (png,) = (tmp_path / "r").glob("*.png")
    parameters, record = read_png_metadata(png)
    assert parameters is not None and "Sampler: Euler, Schedule type: Simple" in parameters
    assert record is not None and record["schedule"] == "simple"

    batch = ["batch", "--prompt", "a red circle", "--seeds", "1", "--out", str(tmp_path / "b"),
             *fast]  # fmt: skip
    assert main([*batch, "--schedule", "karras"]) == 0
    capsys.readouterr()
    assert main([*batch, "--schedule", "simple"]) == 2  # the image there is another schedule's
    assert "rendered with other settings" in capsys.readouterr().err
    assert main([*batch, "--schedule", "karras"]) == 0  # the same settings: complete, skipped
