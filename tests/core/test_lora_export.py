"""LoRA export, verified: a plain diffusers pipeline loads each export with
`load_lora_weights`, consumes every key, and its U-Net computes what our own merge computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors import safe_open

from ostaf.cli.main import main
from ostaf.errors import AttributeFileError, SettingsError
from ostaf.images import image_from_data_url
from ostaf.interop.lora_export import export_lora
from ostaf.library.attribute_file import Attribute, save_attribute
from ostaf.library.projects import ProjectStore
from ostaf.method.regions import BLOCKS, AttributeKind, Region
from ostaf.models.base_model import BaseModel
from tests.core.attribute_factory import make_attribute, one_torch_thread  # noqa: F401

LAMBDA = 1.3
TOLERANCE = 1e-5  # measured ≤ 1.1e-6 for both formats, on U-Net outputs up to ≈ 1.3


@pytest.fixture(scope="module")
def attribute(demo: BaseModel) -> Attribute:
    """Every attention projection of the U-Net (down, mid and up): every key pattern."""
    return make_attribute(
        demo, AttributeKind.STYLE, seed=5, name="Ink wash", scale=0.3, default_lambda=LAMBDA,
        region=Region(blocks=BLOCKS),
    )  # fmt: skip


@pytest.fixture(scope="module")
def plain() -> StableDiffusionPipeline:
    """The demo model loaded by diffusers alone, as another tool would."""
    from ostaf.models.demo_model import demo_model_dir

    return StableDiffusionPipeline.from_pretrained(
        demo_model_dir(), safety_checker=None, requires_safety_checker=False
    )


def _unet_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 16, 16, generator=generator)
    context = torch.randn(2, 7, 64, generator=generator)
    return latents, torch.tensor([100, 700]), context


@torch.no_grad()
def _ours(model: BaseModel, attribute: Attribute, lam: float) -> torch.Tensor:
    x, t, c = _unet_inputs()
    model.merger.apply([(attribute.factors, lam)])
    try:
        return model.unet(x, t, c).sample
    finally:
        model.merger.restore()


@torch.no_grad()
def _theirs(pipe: StableDiffusionPipeline) -> torch.Tensor:
    x, t, c = _unet_inputs()
    return pipe.unet(x, t, c).sample


def _check_coverage(
    pipe: StableDiffusionPipeline, adapter: str, attribute: Attribute, fmt: str, lam: float
) -> None:
    """Every exported tensor sits in the U-Net at its layer, and every layer scales right."""
    from peft.tuners.lora import LoraLayer
    from peft.utils import get_peft_model_state_dict

    loaded = get_peft_model_state_dict(pipe.unet, adapter_name=adapter)
    expected = {f"{p}.lora_{s}.weight" for p in attribute.factors for s in "AB"}
    assert set(loaded) == expected  # nothing missing, nothing extra
    rank = attribute.meta.rank
    layers = {
        name: module
        for name, module in pipe.unet.named_modules()
        if isinstance(module, LoraLayer) and adapter in module.scaling
    }
    assert set(layers) == set(attribute.factors)
    for path, (a, b) in attribute.factors.items():
        assert torch.equal(loaded[f"{path}.lora_A.weight"], b)
        scale = layers[path].scaling[adapter]
        if fmt == "kohya":
            assert torch.equal(loaded[f"{path}.lora_B.weight"], a)
            assert scale == pytest.approx(lam / rank)
        else:
            assert torch.allclose(loaded[f"{path}.lora_B.weight"], a * lam / rank)
            assert scale == 1.0


@pytest.mark.parametrize("fmt", ["kohya", "diffusers"])
def test_diffusers_loads_the_export_and_matches_our_unet(
    model: BaseModel,
    attribute: Attribute,
    plain: StableDiffusionPipeline,
    diffusers_warnings: list[str],
    tmp_path: Path,
    fmt: str,
) -> None:
    out = export_lora(attribute, tmp_path / f"ink-{fmt}.safetensors", fmt).path  # type: ignore[arg-type]
    if fmt == "kohya":
        state, alphas = plain.lora_state_dict(str(out))
        assert len(state) == 2 * len(attribute.factors)  # every up/down pair converted
        assert len(alphas) == len(attribute.factors)
        assert all(value == pytest.approx(LAMBDA) for value in alphas.values())  # fp32 alpha
    plain.load_lora_weights(str(out), adapter_name=fmt)
    try:
        plain.set_adapters([fmt])
        theirs = _theirs(plain)
        _check_coverage(plain, fmt, attribute, fmt, LAMBDA)
    finally:
        plain.delete_adapters(fmt)
    ours = _ours(model, attribute, LAMBDA)
    base = _theirs(plain)
    assert (ours - base).abs().max() > 0.05  # the attribute really changes the output
    assert (theirs - ours).abs().max().item() <= TOLERANCE
    problems = [m for m in diffusers_warnings if "text_encoder" not in m]
    assert problems == []  # no unexpected, missing or unconverted keys


def test_the_other_tools_weight_scales_lambda(
    model: BaseModel, attribute: Attribute, plain: StableDiffusionPipeline, tmp_path: Path
) -> None:
    """Exported at λ 1, weight 0.6 in diffusers equals our λ 0.6."""
    out = export_lora(attribute, tmp_path / "one.safetensors", "kohya", 1.0).path
    plain.load_lora_weights(str(out), adapter_name="one")
    try:
        plain.set_adapters(["one"], [0.6])
        theirs = _theirs(plain)
    finally:
        plain.delete_adapters("one")
    assert (theirs - _ours(model, attribute, 0.6)).abs().max().item() <= TOLERANCE


def test_kohya_keys_and_metadata(attribute: Attribute, tmp_path: Path) -> None:
    done = export_lora(attribute, tmp_path / "ink.safetensors", "kohya", 0.8)
    with safe_open(str(done.path), framework="pt") as handle:
        keys = set(handle.keys())
        meta = handle.metadata()
        path = "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0"
        name = "lora_unet_" + path.replace(".", "_")  # SD 1.x: the diffusers path
        assert name == "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_out_0"
        a, b = attribute.factors[path]
        assert torch.equal(handle.get_tensor(f"{name}.lora_up.weight"), a)
        assert torch.equal(handle.get_tensor(f"{name}.lora_down.weight"), b)
        alpha = handle.get_tensor(f"{name}.alpha")
        assert alpha.ndim == 0 and alpha.item() == pytest.approx(0.8)
    assert len(keys) == 3 * len(attribute.factors)
    assert all(k.startswith("lora_unet_") for k in keys)
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "0.8"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_output_name"] == "ink"
    assert meta["modelspec.sai_model_spec"] == "1.0.0"
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.title"] == "Ink wash"
    assert image_from_data_url(meta["modelspec.thumbnail"]).size == (96, 96)
    assert meta["ostaf.lambda"] == "0.8"
    assert meta["ostaf.content_hash"] == attribute.content_hash()
    assert "ostaf" not in meta  # so that it is never mistaken for an attribute file


def test_diffusers_keys(attribute: Attribute, tmp_path: Path) -> None:
    done = export_lora(attribute, tmp_path / "ink.safetensors", "diffusers")
    assert done.intensity == LAMBDA  # the attribute's default λ
    assert set(done.tensors) == {
        f"unet.{p}.lora_{s}.weight" for p in attribute.factors for s in "AB"
    }
    path = next(iter(attribute.factors))
    a, b = attribute.factors[path]
    assert done.tensors[f"unet.{path}.lora_A.weight"].shape == b.shape
    assert done.tensors[f"unet.{path}.lora_B.weight"].shape == a.shape


def test_bad_exports_are_refused(attribute: Attribute, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="changes nothing"):
        export_lora(attribute, tmp_path / "zero.safetensors", "kohya", 0.0)
    with pytest.raises(SettingsError, match=r"must end in \.safetensors"):
        export_lora(attribute, tmp_path / "x.pt", "kohya")
    target = tmp_path / "taken.safetensors"
    target.write_bytes(b"mine")
    with pytest.raises(SettingsError, match="already exists"):
        export_lora(attribute, target, "kohya")
    assert target.read_bytes() == b"mine"


def test_export_lora_command_and_lora_import_refused(
    home: Path, attribute: Attribute, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = save_attribute(tmp_path / "ink-attribute.safetensors", attribute)
    out = tmp_path / "ink-lora.safetensors"
    code = main(["export-lora", str(source), "--format", "kohya", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == str(out)
    assert "weight 1 in other tools = λ 1.3" in captured.err
    assert main(["export-lora", str(source), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export-lora", str(source), "--out", str(out), "--force", "--lambda", "2"]) == 0
    project = ProjectStore().create("Loras")
    with pytest.raises(AttributeFileError, match="this is a LoRA, not an OSTAF attribute"):
        project.import_attribute(out)
    assert list(project.attributes_dir.iterdir()) == []
    project.release()
