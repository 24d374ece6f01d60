"""Base models: offline loading, deterministic demo model, fingerprints, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ostaf.errors import ModelLoadError, SettingsError
from ostaf.models.base_model import BaseModel, architecture_of, fingerprint_of, load_base_model
from ostaf.models.devices import choose_placement


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_demo_model_is_built_deterministically(tmp_path: Path) -> None:
    from ostaf.models.demo_model import write_demo_model

    first = _digest(write_demo_model(tmp_path / "a"))
    second = _digest(write_demo_model(tmp_path / "b"))
    assert first == second
    assert "unet/diffusion_pytorch_model.safetensors" in first


def test_demo_model_loads_as_a_diffusers_folder(demo: BaseModel, tmp_path: Path) -> None:
    from ostaf.models.demo_model import write_demo_model

    folder = write_demo_model(tmp_path / "demo")
    loaded = load_base_model(folder, device="cpu")
    assert loaded.architecture == demo.architecture
    assert loaded.fingerprint == demo.fingerprint
    assert loaded.resolution == 64
    assert loaded.family.id == "sd1" and loaded.family.label == "Stable Diffusion 1.x"


def test_folder_weights_are_loaded_into_memory_of_their_own(
    model: BaseModel, tmp_path: Path
) -> None:
    # Left in the weight files' memory maps, a rewrite of a file in place changed the model.
    import torch

    from ostaf.models.demo_model import write_demo_model
    from tests.core.test_checkpoints import assert_owns_its_memory

    folder = write_demo_model(tmp_path / "demo")
    loaded = load_base_model(folder, device="cpu")
    for weights in folder.rglob("*.safetensors"):
        header = 8 + int.from_bytes(weights.read_bytes()[:8], "little")
        with weights.open("r+b") as handle:
            handle.seek(header)
            handle.write(bytes(weights.stat().st_size - header))

    for name in ("unet", "vae", "text_encoder"):
        module, original = getattr(loaded.pipe, name), getattr(model.pipe, name).state_dict()
        assert_owns_its_memory(module)
        assert all(torch.equal(t, original[k]) for k, t in module.state_dict().items()), name


def test_fingerprints_tell_models_apart(demo: BaseModel) -> None:
    import copy

    import torch

    other = copy.deepcopy(demo.unet)
    with torch.no_grad():
        next(iter(other.parameters())).add_(0.01)
    assert architecture_of(other) == demo.architecture
    assert fingerprint_of(other) != demo.fingerprint
    assert fingerprint_of(other.half()) == fingerprint_of(other)  # fp16 and fp32 loads agree


def test_missing_and_wrong_model_paths_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nowhere does not exist; choose a diffusers folder"):
        load_base_model(tmp_path / "nowhere", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        load_base_model(tmp_path / "empty", device="cpu")
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match=r"pickle checkpoints.*convert it to \.safetensors"):
        load_base_model(pickle, device="cpu")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model"):
        load_base_model(text, device="cpu")


def test_incomplete_folder_is_explained(tmp_path: Path) -> None:
    import shutil

    from ostaf.models.demo_model import write_demo_model

    folder = write_demo_model(tmp_path / "demo")
    shutil.rmtree(folder / "vae")
    with pytest.raises(ModelLoadError, match="missing vae"):
        load_base_model(folder, device="cpu")


def test_device_policy() -> None:
    placement = choose_placement("cpu", "auto")
    assert placement.device.type == "cpu" and str(placement.dtype) == "torch.float32"
    with pytest.raises(SettingsError, match="not supported on the CPU"):
        choose_placement("cpu", "fp16")
    with pytest.raises(SettingsError, match="unknown"):
        choose_placement("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(SettingsError, match="'cuda' is not available here"):
            choose_placement("cuda")
