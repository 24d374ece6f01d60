"""What the app says about a loaded model and a model choice: the family, and the prediction
when it is not the usual ε one (a v-prediction, zero-terminal-SNR SDXL file here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ostaf.models.model_check import check_model_source
from ostaf.progress import CancelToken
from ostaf.requests import ModelChoice
from ostaf_desktop.backend import CoreBackend
from ostaf_desktop.ui_state import UiState
from ostaf_desktop.viewmodels.session import SessionViewModel
from tests.core import sdxl_tiny


def test_status_bar_and_settings_name_a_zero_snr_v_prediction_model(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ostaf.models.families import sdxl as sdxl_family

    models = sdxl_tiny.build_tiny_sdxl(seed=0)
    config = sdxl_tiny.write_config_dir(models, tmp_path / "config")
    monkeypatch.setattr(type(sdxl_family.FAMILY), "config_dir", lambda family: config)
    state = {**sdxl_tiny.sgm_state_dict(models), "v_pred": torch.empty(0), "ztsnr": torch.empty(0)}
    path = sdxl_tiny.save_checkpoint(state, tmp_path / "noob.safetensors")

    # Settings' line, before anything is loaded.
    assert check_model_source(str(path)).endswith(", v-prediction, zero terminal SNR")

    info = CoreBackend().load_model(ModelChoice(str(path), "cpu"), lambda _: None, CancelToken())
    assert info.family == "Stable Diffusion XL, v-prediction, zero terminal SNR"
    assert info.guidance == 5.0  # SDXL's own CFG, which the Render panel starts at
    session = SessionViewModel(UiState())
    session.model_loaded(info)
    assert session.model_status == (
        "noob · Stable Diffusion XL, v-prediction, zero terminal SNR · cpu float32"
    )
