"""Checking a base-model choice without loading it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ostaf.errors import ModelLoadError
from ostaf.models.model_check import check_model_source
from ostaf.paths import resource


def test_demo_is_always_usable() -> None:
    assert "demo" in check_model_source("demo")


def test_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_model_source(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        check_model_source(str(tmp_path))
    folder = tmp_path / "sd15"
    shutil.copytree(resource("model_configs", "sd15"), folder)
    with pytest.raises(ModelLoadError, match="holds no weights"):
        check_model_source(str(folder))
    for component in ("unet", "vae", "text_encoder"):
        name = "model" if component == "text_encoder" else "diffusion_pytorch_model"
        (folder / component / f"{name}.safetensors").write_bytes(b"")
    assert check_model_source(str(folder)) == "Stable Diffusion 1.x diffusers folder (sd15)"
    shutil.rmtree(folder / "vae")
    with pytest.raises(ModelLoadError, match="missing vae"):
        check_model_source(str(folder))


def test_files(tmp_path: Path) -> None:
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="pickle"):
        check_model_source(str(pickle))
    junk = tmp_path / "model.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="corrupt"):
        check_model_source(str(junk))
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(ModelLoadError, match="not a model"):
        check_model_source(str(text))
