"""Base-model families: recognition of files and folders without loading them, the shipped
SDXL configs, sizes, regions that follow the method's map, and LoRA names other tools read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ostaf.errors import ModelLoadError
from ostaf.method import regions
from ostaf.method.regions import AttributeKind, Region
from ostaf.models.families import (
    FAMILIES,
    Prediction,
    by_id,
    family_of_folder,
    recognise_checkpoint,
)
from ostaf.models.families.sdxl import sgm_path
from ostaf.models.model_check import check_model_source, model_sizes
from ostaf.paths import resource

U = "model.diffusion_model."
CONV_IN = U + "input_blocks.0.0.weight"
XL_CONTEXT = U + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
LABEL = U + "label_emb.0.0.weight"
XL_TEXT = "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"
XL_TEXT_2 = "conditioner.embedders.1.model.token_embedding.weight"
REFINER_TEXT = "conditioner.embedders.0.model.token_embedding.weight"
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat" in CLIP's vocabulary


def _keys_file(tmp_path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A file with these tensor names and shapes (recognition reads nothing else)."""
    path = tmp_path / "k.safetensors"
    save_file({k: torch.zeros(s) for k, s in shapes.items()}, str(path))
    return path


# --- single files ---------------------------------------------------------------------------

XL_BASE = {CONV_IN: (320, 4, 3, 3), XL_CONTEXT: (640, 2048), LABEL: (1280, 2816)}


@pytest.mark.parametrize(
    "shapes",
    [
        {**XL_BASE, XL_TEXT: (1, 1), XL_TEXT_2: (1, 1)},
        XL_BASE,  # a U-Net-only SDXL file: by its label embedding
        {CONV_IN: (8, 4, 3, 3), LABEL: (8, 24), XL_TEXT: (1, 1), XL_TEXT_2: (1, 1)},  # tiny
    ],
)
def test_sdxl_files_are_recognised_by_names_and_shapes(tmp_path: Path, shapes: dict) -> None:
    family, _ = recognise_checkpoint(_keys_file(tmp_path, shapes))
    assert family.id == "sdxl" and family.label == "Stable Diffusion XL"


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            {CONV_IN: (384, 4, 3, 3), LABEL: (1536, 2560), REFINER_TEXT: (1, 1)},
            "this is a Stable Diffusion XL refiner",
        ),
        ({CONV_IN: (384, 4, 3, 3), LABEL: (1536, 2560)}, "Stable Diffusion XL refiner"),
        (
            {**XL_BASE, CONV_IN: (320, 9, 3, 3), XL_TEXT: (1, 1), XL_TEXT_2: (1, 1)},
            r"9 input channels, not 4: an inpainting model \(Stable Diffusion XL\)",
        ),
        (
            {U + "joint_blocks.0.context_block.adaLN_modulation.1.bias": (1,)},
            "this is a Stable Diffusion 3 checkpoint",
        ),
        ({"joint_blocks.0.x_block.mlp.fc1.weight": (1,)}, "Stable Diffusion 3 checkpoint"),
        ({"double_blocks.0.img_attn.norm.key_norm.scale": (1,)}, "this is a Flux checkpoint"),
        ({"clip_l": (1, 768), "clip_g": (1, 1280)}, "textual-inversion embedding"),
        (
            {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": (8, 4)},
            "this is a LoRA",
        ),
        (
            {XL_TEXT: (1, 1), XL_TEXT_2: (1, 1), U + "input_blocks.1.1.norm.weight": (1,)}
            | {U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768)},
            "its U-Net is Stable Diffusion 1.x but its text encoder is Stable Diffusion XL",
        ),
    ],
)
def test_other_models_are_refused_naming_what_they_are(
    tmp_path: Path, shapes: dict, message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message) as info:
        recognise_checkpoint(_keys_file(tmp_path, shapes))
    assert "k.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_v_prediction_sdxl_files_say_so(tmp_path: Path) -> None:
    family, keys = recognise_checkpoint(_keys_file(tmp_path, {**XL_BASE, "v_pred": (0,)}))
    assert family.prediction_in(keys) == Prediction("v_prediction", zero_terminal_snr=False)
    family, keys = recognise_checkpoint(_keys_file(tmp_path, XL_BASE))
    assert family.prediction_in(keys) is None


def test_zero_terminal_snr_is_read_beside_v_pred_as_comfyui_does(tmp_path: Path) -> None:
    # NoobAI-XL v-pred carries both markers; ComfyUI (supported_models.SDXL.model_type) turns
    # on its zero-SNR sampling only when `ztsnr` comes with `v_pred`.
    both = {**XL_BASE, "v_pred": (0,), "ztsnr": (0,)}
    family, keys = recognise_checkpoint(_keys_file(tmp_path, both))
    prediction = family.prediction_in(keys)
    assert prediction == Prediction("v_prediction", zero_terminal_snr=True)
    assert prediction is not None and prediction.scheduler_settings() == {
        "prediction_type": "v_prediction",
        "rescale_betas_zero_snr": True,
        "timestep_spacing": "trailing",
    }
    family, keys = recognise_checkpoint(_keys_file(tmp_path, {**XL_BASE, "ztsnr": (0,)}))
    assert family.prediction_in(keys) is None


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ({"edm_mean": (1, 4, 1, 1), "edm_std": (1, 4, 1, 1)}, r"an EDM model \(Playground v2\.5"),
        ({"edm_vpred.sigma_max": (), "edm_vpred.sigma_min": ()}, "an EDM v-prediction model"),
    ],
)
def test_edm_sdxl_files_are_refused_naming_why(tmp_path: Path, markers: dict, message: str) -> None:
    shapes = {**XL_BASE, XL_TEXT: (1, 1), XL_TEXT_2: (1, 1), **markers}
    with pytest.raises(ModelLoadError, match=message) as info:
        recognise_checkpoint(_keys_file(tmp_path, shapes))
    text = str(info.value)
    assert "k.safetensors" in text and "cannot run" in text and "\n" not in text


# --- diffusers folders ------------------------------------------------------------------------


def _folder(tmp_path: Path, **index_changes: object) -> Path:
    """The shipped SDXL config folder with empty weight files, model_index.json edited."""
    folder = tmp_path / "xl"
    shutil.copytree(resource("model_configs", "sdxl"), folder)
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        name = "diffusion_pytorch_model" if component in ("unet", "vae") else "model"
        (folder / component / f"{name}.safetensors").write_bytes(b"")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(index_changes)
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_sdxl_folders_are_checked_without_loading(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert check_model_source(str(folder)) == "Stable Diffusion XL diffusers folder (xl)"
    sizes = model_sizes(str(folder))
    assert (sizes.family.id, sizes.native, sizes.vae_scale_factor) == ("sdxl", 1024, 8)
    shutil.rmtree(folder / "text_encoder_2")
    with pytest.raises(ModelLoadError, match="missing text_encoder_2"):
        check_model_source(str(folder))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {
                "_class_name": "StableDiffusionXLImg2ImgPipeline",
                "text_encoder": [None, None],
                "requires_aesthetics_score": True,
            },
            "xl is a Stable Diffusion XL refiner",
        ),
        ({"_class_name": "StableDiffusionXLInpaintPipeline"}, "an inpainting model"),
        ({"_class_name": "StableDiffusion3Pipeline"}, "holds a Stable Diffusion 3 model"),
        ({"_class_name": "FluxPipeline"}, "holds a Flux model"),
    ],
)
def test_other_folders_are_refused_naming_what_they_are(
    tmp_path: Path, changes: dict, message: str
) -> None:
    with pytest.raises(ModelLoadError, match=message) as info:
        family_of_folder(_folder(tmp_path, **changes))
    assert "\n" not in str(info.value)


def test_a_nine_channel_sdxl_unet_is_an_inpainting_model(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 9}))
    with pytest.raises(ModelLoadError, match=r"an inpainting model \(Stable Diffusion XL\)"):
        check_model_source(str(folder))


# --- the shipped SDXL folder --------------------------------------------------------------------


def test_shipped_sdxl_configs_build_the_published_architecture() -> None:
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    folder = by_id("sdxl").config_dir()
    published = {  # parameter counts of SDXL 1.0 base, which fix every shape
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,  # CLIP ViT-L/14
        "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14 with its projection
    }
    with torch.device("meta"):
        models = {
            "unet": UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(folder / "unet")
            ),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
        }
        for name in ("text_encoder", "text_encoder_2"):
            config = transformers.CLIPTextConfig.from_pretrained(folder / name)
            cls = json.loads((folder / name / "config.json").read_text())["architectures"][0]
            models[name] = getattr(transformers, cls)(config)
    assert {n: sum(p.numel() for p in m.parameters()) for n, m in models.items()} == published
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert not list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))


def test_shipped_sdxl_tokenizers_share_the_clip_vocabulary() -> None:
    from ostaf.models.single_file import load_tokenizer

    folder = by_id("sdxl").config_dir()
    assert not (folder / "tokenizer" / "vocab.json").exists()  # one shared copy
    for name, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):
        tokenizer = load_tokenizer(folder / name)
        assert tokenizer("a photo of a cat")["input_ids"] == CAT_IDS
        assert tokenizer.pad_token == pad and tokenizer.model_max_length == 77


def test_every_family_ships_a_config_folder_for_its_pipeline() -> None:
    for family in FAMILIES:
        index = json.loads((family.config_dir() / "model_index.json").read_text())
        assert index["_class_name"] == family.pipeline_name
        assert all((family.config_dir() / c).is_dir() for c in family.components)


# --- sizes, regions, LoRA names -------------------------------------------------------------------


def test_sdxl_offers_its_native_size_and_the_usual_buckets() -> None:
    sizes = by_id("sdxl").offered_sizes(1024)
    assert sizes[0] == ("Square 1024×1024 (native)", 1024, 1024)
    pairs = {(w, h) for _, w, h in sizes}
    assert {(1152, 896), (1216, 832), (1344, 768), (1536, 640)} <= pairs
    assert {(h, w) for w, h in pairs} == pairs  # portrait and landscape alike
    assert all(w % 64 == 0 and h % 64 == 0 and 0.9e6 < w * h < 1.1e6 for w, h in pairs)
    assert by_id("sdxl").tuning_sizes(1024, 8) == tuple(range(512, 2049, 64))
    assert by_id("sd1").tuning_sizes(512, 8)[0] == 256


def test_families_take_their_regions_from_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    for family in FAMILIES:
        for kind in AttributeKind:
            assert family.region(kind) is regions.REGION_BY_KIND[kind]
    # A change of the method's defaults reaches every family (they refer, never copy).
    changed = Region(blocks=("down_blocks", "mid_block"))
    monkeypatch.setitem(regions.REGION_BY_KIND, AttributeKind.SHAPE, changed)
    assert all(f.region(AttributeKind.SHAPE) is changed for f in FAMILIES)


def test_sdxl_kohya_names_are_the_sgm_ones_diffusers_maps_back() -> None:
    """Every attention projection of the real SDXL U-Net: our kohya name, converted by
    diffusers' own SGM → diffusers mapping, is the module again."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.lora_conversion_utils import (
        _convert_unet_lora_key,
        _maybe_map_sgm_blocks_to_diffusers,
    )
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    config = UNet2DConditionModel.load_config(by_id("sdxl").config_dir() / "unet")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    everything = Region(blocks=regions.BLOCKS)
    paths = everything.select(name for name, _ in unet.named_modules())
    assert len(paths) == 4 * 2 * (2 * (2 + 10) + 10 + 3 * (2 + 10))  # 560 projections
    xl = by_id("sdxl")
    names = {xl.kohya_name(p) + ".lora_down.weight": p for p in paths}
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in names
    assert "lora_unet_middle_block_1_transformer_blocks_9_attn2_to_v.lora_down.weight" in names
    assert "lora_unet_output_blocks_5_1_transformer_blocks_1_attn2_to_out_0.lora_down.weight" in (
        names
    )
    mapped = _maybe_map_sgm_blocks_to_diffusers(dict.fromkeys(names, 0), unet.config)
    peft = convert_unet_state_dict_to_peft({_convert_unet_lora_key(k): 0 for k in mapped})
    assert {k.removesuffix(".lora_A.weight") for k in peft} == set(paths)
    with pytest.raises(ValueError, match="not inside an attention block"):
        sgm_path("conv_in")


def test_lora_metadata_names_the_family_as_other_tools_read_it() -> None:
    xl = by_id("sdxl").lora_metadata("kohya", 1024, "epsilon")
    assert xl["ss_base_model_version"] == "sdxl_base_v1-0"  # A1111/Forge: startswith("sdxl_")
    assert xl["ss_v2"] == "False"
    assert xl["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert xl["modelspec.implementation"] == "https://github.com/Stability-AI/generative-models"
    assert by_id("sdxl").lora_metadata("diffusers", 1024, "")["modelspec.implementation"] == (
        "diffusers"
    )
    sd2 = by_id("sd2").lora_metadata("kohya", 768, "")
    assert (sd2["ss_base_model_version"], sd2["ss_v2"]) == ("sd_v2", "True")
    assert sd2["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert sd2["modelspec.prediction_type"] == "v"
    sd1 = by_id("sd1").lora_metadata("kohya", 512, "epsilon")
    assert sd1["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert by_id("sd1").kohya_name(
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    ) == ("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q")
