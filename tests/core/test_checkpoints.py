"""Single-file SD 1.x/2.x checkpoints: tiny models written in the original key layout load back
with every tensor equal, offline, through the shipped-config path, into memory of their own;
foreign and damaged files are refused."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from ostaf.errors import ModelLoadError
from ostaf.models import single_file as checkpoints
from ostaf.models.single_file import detect_family, load_single_file, model_config_dir
from tests.core import ldm_keys

SD_DOWN = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
SD_UP = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
TINY_LAYERS_PER_BLOCK = 2
TINY_VAE_BLOCKS = 4
TINY_WIDTH = 32
CAT_IDS = [49406, 320, 1125, 539, 320, 2368, 49407]  # "a photo of a cat" in CLIP's vocabulary

# Where diffusers, transformers and huggingface_hub would reach the Hub.
HUB_ENTRY_POINTS = {
    "huggingface_hub": ("hf_hub_download", "snapshot_download"),
    "huggingface_hub.file_download": ("hf_hub_download",),
    "transformers.utils.hub": ("hf_hub_download", "snapshot_download"),
    "diffusers.utils.hub_utils": ("hf_hub_download", "snapshot_download", "_get_model_file"),
    "diffusers.loaders.single_file": (
        "snapshot_download",
        "_download_diffusers_model_config_from_hub",
        "fetch_diffusers_config",
    ),
    "diffusers.loaders.single_file_model": ("fetch_diffusers_config",),
    "diffusers.loaders.single_file_utils": ("_get_model_file", "fetch_diffusers_config"),
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make every socket connection and Hub lookup fail, and fail the test if any was tried
    (even one whose error the library swallowed)."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise OSError(f"test forbids network access: {what}")

        return refused

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    for module_name, names in HUB_ENTRY_POINTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse(f"{module_name}.{name}"))
    yield attempts
    assert attempts == [], f"network or Hub access was attempted: {attempts}"


def _randomise(model: torch.nn.Module, seed: int) -> None:
    # Default inits leave many tensors at exactly 0 or 1 (norms, biases): random values make a
    # swapped or skipped key visible in a bit-exact comparison.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


def build_tiny(family: str) -> dict[str, Any]:
    """A tiny model with SD's block layout for `family`: U-Net, VAE and text encoder."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    sd2 = family == "sd21"
    unet = UNet2DConditionModel(
        sample_size=8,
        down_block_types=SD_DOWN,
        up_block_types=SD_UP,
        block_out_channels=(16, 16, 32, 32),
        layers_per_block=TINY_LAYERS_PER_BLOCK,
        norm_num_groups=8,
        cross_attention_dim=TINY_WIDTH,
        attention_head_dim=[1, 2, 4, 4] if sd2 else 2,
        use_linear_projection=sd2,
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * TINY_VAE_BLOCKS,
        up_block_types=("UpDecoderBlock2D",) * TINY_VAE_BLOCKS,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=2,
        norm_num_groups=8,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,  # the real CLIP vocabulary, shared by the shipped configs
            hidden_size=TINY_WIDTH,
            intermediate_size=64,
            # SD 2.x drops the last of OpenCLIP's 24 layers; the file still holds it as
            # block 23, which diffusers skips by that number.
            num_hidden_layers=23 if sd2 else 2,
            num_attention_heads=2,
            hidden_act="gelu" if sd2 else "quick_gelu",
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
        )
    )
    for seed, model in enumerate((unet, vae, text_encoder)):
        _randomise(model, seed)
        model.eval()
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder}


def ldm_state_dict(family: str, models: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tiny models as one state dict in the original single-file key layout."""
    text = models["text_encoder"].state_dict()
    return {
        **ldm_keys.unet_to_ldm(models["unet"].state_dict(), TINY_LAYERS_PER_BLOCK),
        **ldm_keys.vae_to_ldm(models["vae"].state_dict(), TINY_VAE_BLOCKS),
        **(
            ldm_keys.open_clip_to_ldm(text, projection_dim=16)
            if family == "sd21"
            else ldm_keys.clip_to_ldm(text)
        ),
    }


def write_config_dir(family: str, models: dict[str, Any], out: Path) -> Path:
    """The shipped family folder with the tiny models' configs in place of the real ones."""
    shutil.copytree(model_config_dir(family), out)
    models["unet"].save_config(out / "unet")
    models["vae"].save_config(out / "vae")
    models["text_encoder"].config.save_pretrained(out / "text_encoder")
    return out


def save_checkpoint(state: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture(scope="module", params=["sd15", "sd21"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    family = request.param
    root = tmp_path_factory.mktemp(family)
    torch.manual_seed(0)
    models = build_tiny(family)
    state = ldm_state_dict(family, models)
    return {
        "family": family,
        "models": models,
        "state": state,
        "config_dir": write_config_dir(family, models, root / "config"),
        "checkpoint": save_checkpoint(state, root / f"tiny-{family}.safetensors"),
    }


# Tests of what does not depend on the family run on one tiny model only (the CPU is small).
ONE_FAMILY = {f: pytest.mark.parametrize("tiny", [f], indirect=True) for f in ("sd15", "sd21")}


def _assert_same_state(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    got, want = loaded.state_dict(), original.state_dict()
    assert sorted(got) == sorted(want)
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert different == []
    assert [k for k in want if got[k].dtype != want[k].dtype] == []


def assert_owns_its_memory(module: torch.nn.Module) -> None:
    """Every tensor is contiguous and in memory torch allocated (64-byte aligned on the CPU),
    not a view into the weight file's memory map (see base_model._own_memory)."""
    tensors = [*module.parameters(), *module.buffers()]
    assert [t.shape for t in tensors if not t.is_contiguous()] == []
    assert [t.shape for t in tensors if t.data_ptr() % 64] == []


def _load(tiny: dict, monkeypatch: pytest.MonkeyPatch, path: Path | None = None) -> Any:
    """The checkpoint as the app loads it, with the tiny family folder as shipped config."""
    from ostaf.models.base_model import load_base_model

    _use_tiny_configs(tiny, monkeypatch)
    return load_base_model(path or tiny["checkpoint"], device="cpu", precision="fp32")


def _use_tiny_configs(tiny: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny family folder in place of the shipped one, for loads without config_dir."""
    from ostaf.models.families import sd1, sd2

    family = sd2.FAMILY if tiny["family"] == "sd21" else sd1.FAMILY
    monkeypatch.setattr(type(family), "config_dir", lambda _: tiny["config_dir"])


# --- round trips ------------------------------------------------------------------------------


def test_round_trip_is_exact_and_offline(
    tiny: dict, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    model = _load(tiny, monkeypatch)
    pipe = model.pipe

    assert model.name == f"tiny-{tiny['family']}"
    for name in ("unet", "vae", "text_encoder"):
        _assert_same_state(getattr(pipe, name), tiny["models"][name])
        assert_owns_its_memory(getattr(pipe, name))
    # Equal weights in equal layouts; the outputs of two model instances are still compared
    # with a tolerance, since which kernel a CPU picks is not part of the contract.
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    context = torch.randn(1, 5, TINY_WIDTH, generator=generator)
    with torch.no_grad():
        want = tiny["models"]["unet"](sample, 10, context).sample
        got = pipe.unet(sample, 10, context).sample
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)  # measured 4.5e-7 before

    # The shared CLIP vocabulary with each family's settings, and its published scheduler.
    assert pipe.tokenizer("a photo of a cat")["input_ids"] == CAT_IDS
    sd2 = tiny["family"] == "sd21"
    assert pipe.tokenizer.pad_token == ("!" if sd2 else "<|endoftext|>")
    assert pipe.tokenizer.model_max_length == 77
    assert pipe.scheduler.config.prediction_type == ("v_prediction" if sd2 else "epsilon")
    assert pipe.safety_checker is None and pipe.feature_extractor is None


@ONE_FAMILY["sd15"]
def test_load_job_hashes_the_file_once_for_a1111(
    tiny: dict, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    from ostaf.models.base_model import load_base_model

    _use_tiny_configs(tiny, monkeypatch)
    messages: list[str] = []
    model = load_base_model(
        tiny["checkpoint"], "cpu", "fp32", progress=lambda r: messages.append(r.message)
    )
    assert model.file_sha256 == hashlib.sha256(tiny["checkpoint"].read_bytes()).hexdigest()
    assert any(m.startswith("Hashing tiny-sd15.safetensors") for m in messages)

    messages.clear()
    again = load_base_model(
        tiny["checkpoint"], "cpu", "fp32", progress=lambda r: messages.append(r.message)
    )
    assert again.file_sha256 == model.file_sha256
    assert not any(m.startswith("Hashing") for m in messages)  # from the cache


@ONE_FAMILY["sd15"]
def test_loaded_model_does_not_change_when_the_file_is_rewritten(
    tiny: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Another tool saving over the checkpoint in place (a merge, a re-save) must not reach a
    # model that is already loaded; with the weights left in the file's memory map it did.
    path = tmp_path / "in-use.safetensors"
    shutil.copyfile(tiny["checkpoint"], path)
    model = _load(tiny, monkeypatch, path)

    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    with path.open("r+b") as handle:
        handle.seek(header)
        handle.write(bytes(path.stat().st_size - header))

    for name in ("unet", "vae", "text_encoder"):
        _assert_same_state(getattr(model.pipe, name), tiny["models"][name])


@ONE_FAMILY["sd15"]
def test_text_encoder_keys_without_text_model_level_load(
    tiny: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: list[str]
) -> None:
    # `cond_stage_model.transformer.embeddings.*` etc., as older tools and kohya's saver under
    # transformers 5 write SD 1.x files; ComfyUI, A1111 and kohya load them.
    standard = ldm_keys.clip_to_ldm(tiny["models"]["text_encoder"].state_dict())
    state = {k: v for k, v in tiny["state"].items() if k not in standard}
    legacy = ldm_keys.clip_to_ldm(
        tiny["models"]["text_encoder"].state_dict(), prefix=ldm_keys.CLIP_LEGACY
    )
    assert not any(".text_model." in k for k in legacy) and len(legacy) == len(standard)
    path = save_checkpoint({**state, **legacy}, tmp_path / "legacy-te.safetensors")

    model = _load(tiny, monkeypatch, path)

    for name in ("unet", "vae", "text_encoder"):
        _assert_same_state(getattr(model.pipe, name), tiny["models"][name])
        assert_owns_its_memory(getattr(model.pipe, name))


@ONE_FAMILY["sd15"]
def test_legacy_text_encoder_with_a_missing_tensor_is_named(
    tiny: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    standard = ldm_keys.clip_to_ldm(tiny["models"]["text_encoder"].state_dict())
    state = {k: v for k, v in tiny["state"].items() if k not in standard}
    legacy = ldm_keys.clip_to_ldm(
        tiny["models"]["text_encoder"].state_dict(), prefix=ldm_keys.CLIP_LEGACY
    )
    del legacy[ldm_keys.CLIP_LEGACY + "final_layer_norm.bias"]
    path = save_checkpoint({**state, **legacy}, tmp_path / "holes.safetensors")

    with pytest.raises(ModelLoadError, match=r"holes\.safetensors: 1 text_encoder tensors"):
        _load(tiny, monkeypatch, path)


@ONE_FAMILY["sd15"]
def test_without_config_diffusers_reaches_for_the_hub(tiny: dict, no_network: list[str]) -> None:
    # Why the configs are shipped (DESIGN §3), and proof that the guard above sees it.
    from diffusers import StableDiffusionPipeline

    with pytest.raises(OSError, match="test forbids network access"):
        StableDiffusionPipeline.from_single_file(str(tiny["checkpoint"]), local_files_only=True)
    assert no_network == ["diffusers.loaders.single_file.fetch_diffusers_config"]
    no_network.clear()


@ONE_FAMILY["sd21"]
def test_fp16_checkpoint_loads_at_the_requested_dtype(tiny: dict, tmp_path: Path) -> None:
    half = {k: v.half() if v.is_floating_point() else v for k, v in tiny["state"].items()}
    path = save_checkpoint(half, tmp_path / "tiny-fp16.safetensors")

    pipe = load_single_file(path, torch.float32, config_dir=tiny["config_dir"])

    loaded = pipe.text_encoder.state_dict()
    for name, tensor in tiny["models"]["text_encoder"].state_dict().items():
        assert loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], tensor.half().float())


@ONE_FAMILY["sd15"]
def test_non_ema_weights_are_used_like_other_tools(tiny: dict, tmp_path: Path) -> None:
    # Full training checkpoints also hold EMA copies under model_ema.*; A1111 and ComfyUI use
    # the model.diffusion_model.* weights, so an exported LoRA matches what they load.
    state = dict(tiny["state"])
    for key in [k for k in state if k.startswith(ldm_keys.UNET)]:
        flat = "model_ema." + key.removeprefix("model.").replace(".", "")
        state[flat] = torch.zeros_like(state[key])
    path = save_checkpoint(state, tmp_path / "tiny-with-ema.safetensors")

    pipe = load_single_file(path, torch.float32, config_dir=tiny["config_dir"])

    _assert_same_state(pipe.unet, tiny["models"]["unet"])


def test_sibling_yaml_sets_the_prediction_type(tiny: dict, tmp_path: Path) -> None:
    # A1111 convention: "<name>.yaml" beside "<name>.safetensors" is the model's original
    # config; SD 2.x "-base" models say no parameterization (epsilon, 512 px).
    path = tmp_path / "model.safetensors"
    os.link(tiny["checkpoint"], path)
    v = tiny["family"] == "sd15"  # flip each family's default
    param = '    parameterization: "v"\n' if v else ""
    path.with_suffix(".yaml").write_text(f"model:\n  params:\n{param}    linear_start: 0.00085\n")

    pipe = load_single_file(path, torch.float32, config_dir=tiny["config_dir"])

    assert pipe.scheduler.config.prediction_type == ("v_prediction" if v else "epsilon")
    if not v:
        assert pipe.unet.config.sample_size == 64


@ONE_FAMILY["sd15"]
def test_unreadable_sibling_yaml_is_named(tiny: dict, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    os.link(tiny["checkpoint"], path)
    path.with_suffix(".yaml").write_text("model: [unclosed\n")

    with pytest.raises(ModelLoadError, match=r"model\.yaml"):
        load_single_file(path, torch.float32, config_dir=tiny["config_dir"])


def test_shipped_config_is_chosen_by_family(tiny: dict) -> None:
    # Without config_dir the real SD architecture is built, which the tiny weights cannot
    # fill: the error names the family whose shipped folder was used.
    name = "Stable Diffusion 2.x" if tiny["family"] == "sd21" else "Stable Diffusion 1.x"
    with pytest.raises(ModelLoadError, match=f"cannot load it as {name}"):
        load_single_file(tiny["checkpoint"], torch.float32)


# --- refused files ----------------------------------------------------------------------------


@ONE_FAMILY["sd15"]
def test_truncated_file_is_refused_by_name(tiny: dict, tmp_path: Path) -> None:
    data = tiny["checkpoint"].read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ModelLoadError, match=r"cut\.safetensors.*truncated or corrupt"):
        load_single_file(path, torch.float32)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 7, random.Random(0).randbytes(64)],
    ids=["empty", "zeros", "random"],  # the same test names in every run (and every worker)
)
def test_corrupt_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)

    with pytest.raises(ModelLoadError, match=r"junk\.safetensors.*truncated or corrupt"):
        detect_family(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nowhere\.safetensors does not exist"):
        load_single_file(tmp_path / "nowhere.safetensors", torch.float32)


def test_lora_is_refused_as_a_lora(tmp_path: Path) -> None:
    lora = {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(320, 4),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0),
    }
    path = save_checkpoint(lora, tmp_path / "style-lora.safetensors")

    with pytest.raises(ModelLoadError, match=r"style-lora\.safetensors: this is a LoRA"):
        load_single_file(path, torch.float32)


@ONE_FAMILY["sd21"]
def test_missing_component_is_named(tiny: dict, tmp_path: Path) -> None:
    no_vae = {k: v for k, v in tiny["state"].items() if not k.startswith(ldm_keys.VAE)}
    path = save_checkpoint(no_vae, tmp_path / "no-vae.safetensors")

    with pytest.raises(
        ModelLoadError, match=r"no-vae\.safetensors: the checkpoint has no VAE weights"
    ):
        load_single_file(path, torch.float32, config_dir=tiny["config_dir"])


@ONE_FAMILY["sd15"]
@pytest.mark.parametrize(
    ("lost", "message"),
    [
        ("model.diffusion_model.out.2.weight", "some U-Net or VAE weights are missing"),
        ("first_stage_model.decoder.conv_out.bias", "some U-Net or VAE weights are missing"),
        (
            "cond_stage_model.transformer.text_model.final_layer_norm.weight",
            r"1 text_encoder tensors \(e\.g\. final_layer_norm\.weight\) are missing",
        ),
    ],
)
def test_missing_tensors_are_reported(tiny: dict, tmp_path: Path, lost: str, message: str) -> None:
    path = save_checkpoint(
        {k: v for k, v in tiny["state"].items() if k != lost}, tmp_path / "holes.safetensors"
    )

    with pytest.raises(ModelLoadError, match=rf"holes\.safetensors: {message}"):
        load_single_file(path, torch.float32, config_dir=tiny["config_dir"])


# --- family detection from key sets -----------------------------------------------------------

U = ldm_keys.UNET
CONTEXT = U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
CONV_IN = U + "input_blocks.0.0.weight"
SD1_TEXT = ldm_keys.CLIP + "embeddings.token_embedding.weight"
SD2_TEXT = ldm_keys.OPEN_CLIP + "token_embedding.weight"


def _keys_file(tmp_path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    # detect_family reads names and shapes only, so the values can be tiny zero tensors.
    return save_checkpoint(
        {k: torch.zeros(s) for k, s in shapes.items()}, tmp_path / "k.safetensors"
    )


@pytest.mark.parametrize(
    ("shapes", "family"),
    [
        ({CONV_IN: (320, 4, 3, 3), CONTEXT: (320, 768), SD1_TEXT: (1, 1)}, "sd15"),
        ({CONV_IN: (320, 4, 3, 3), CONTEXT: (320, 1024), SD2_TEXT: (1, 1)}, "sd21"),
        ({CONV_IN: (320, 4, 3, 3), CONTEXT: (320, 1024)}, "sd21"),  # U-Net only: by its width
        ({CONV_IN: (320, 4, 3, 3), CONTEXT: (320, 768)}, "sd15"),
        ({CONV_IN: (8, 4, 3, 3), CONTEXT: (8, 16), SD2_TEXT: (1, 1)}, "sd21"),  # tiny widths
    ],
)
def test_detect_family(tmp_path: Path, shapes: dict, family: str) -> None:
    assert detect_family(_keys_file(tmp_path, shapes)).config_folder == family


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({CONV_IN: (320, 9, 3, 3), SD1_TEXT: (1, 1)}, "9 input channels, not 4: an inpainting"),
        ({CONV_IN: (320, 4, 3, 3), CONTEXT: (320, 1024), SD1_TEXT: (1, 1)}, "inconsistent"),
        ({"unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": (4, 320)}, "LoRA"),
        ({"down_blocks.0.resnets.0.conv1.weight": (1,)}, "diffusers-format"),
        ({"encoder.conv_in.weight": (1,), "decoder.conv_in.weight": (1,)}, "VAE on its own"),
        ({"emb_params": (1, 768)}, "textual-inversion"),
        ({U + "double_blocks.0.img_attn.norm.key_norm.scale": (1,)}, "a Flux checkpoint"),
        ({CONV_IN: (320, 4, 3, 3)}, "no text encoder and no recognisable U-Net"),
        ({"something": (1,)}, "without a Stable Diffusion U-Net"),
    ],
)
def test_detect_family_refuses_other_files(tmp_path: Path, shapes: dict, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as info:
        detect_family(_keys_file(tmp_path, shapes))
    assert "k.safetensors" in str(info.value)
    assert "\n" not in str(info.value)


# --- the shipped folders ----------------------------------------------------------------------

# Parameter counts of the published models, which fix every shape in the configs.
PUBLISHED_PARAMETERS = {
    ("sd15", "unet"): 859_520_964,
    ("sd15", "vae"): 83_653_863,
    ("sd15", "text_encoder"): 123_060_480,  # CLIP ViT-L/14 text tower
    ("sd21", "unet"): 865_910_724,
    ("sd21", "vae"): 83_653_863,
    ("sd21", "text_encoder"): 340_387_840,  # OpenCLIP ViT-H/14 text tower, 23 of 24 layers
}


@pytest.mark.parametrize("family", ["sd15", "sd21"])
def test_shipped_configs_build_the_published_architectures(family: str) -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = model_config_dir(family)
    with torch.device("meta"):  # shapes only, no memory
        models = {
            "unet": UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(folder / "unet")
            ),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")),
        }
    for name, model in models.items():
        count = sum(p.numel() for p in model.parameters())
        assert count == PUBLISHED_PARAMETERS[family, name], name

    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None]
    assert not list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))


def test_shipped_tokenizers_are_clip() -> None:
    shared = checkpoints.shared_tokenizer_dir()
    assert "MIT License" in (shared / "LICENSE").read_text()
    for family, pad in (("sd15", "<|endoftext|>"), ("sd21", "!")):
        tokenizer = checkpoints.load_tokenizer(model_config_dir(family) / "tokenizer")
        assert len(tokenizer) == 49408
        assert tokenizer("a photo of a cat")["input_ids"] == CAT_IDS
        assert tokenizer.pad_token == pad
        padded = tokenizer("a cat", padding="max_length", max_length=77)["input_ids"]
        assert len(padded) == 77 and padded[-1] == tokenizer.convert_tokens_to_ids(pad)
