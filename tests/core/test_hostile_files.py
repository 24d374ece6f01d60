"""Fuzzing the readers of files that come from outside: attribute files, safetensors headers,
PNG metadata, project.json and settings.json. The only exceptions allowed are the project's
own error types; nothing may hang or allocate what a header merely claims."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from safetensors.torch import save

from ostaf.errors import OstafError
from ostaf.interop.pngmeta import parse_a1111, read_png_metadata
from ostaf.library.attribute_file import load_attribute
from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import Project
from ostaf.settings import load_settings

# OSTAF_FUZZ_EXAMPLES raises the count for a long campaign (the README quotes one).
FUZZ = settings(
    max_examples=int(os.environ.get("OSTAF_FUZZ_EXAMPLES", "150")),
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_VALID_META = {
    "name": "x",
    "kind": "appearance",
    "region": {"blocks": ["up_blocks"]},
    "targets": ["up_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"],
    "rank": 2,
    "base_model": {"name": "m", "architecture": "a", "fingerprint": "f"},
    "reference": {"sha256": "0" * 64, "width": 1, "height": 1},
    "format_version": 1,
}
_TARGET = _VALID_META["targets"][0]  # type: ignore[index]


def _valid_attribute_bytes() -> bytes:
    tensors = {f"{_TARGET}.A": torch.ones(3, 2), f"{_TARGET}.B": torch.ones(2, 5)}
    return save(tensors, metadata={"ostaf": json.dumps(_VALID_META)})


def _read_both(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.safetensors"
        path.write_bytes(data)
        for reader in (read_meta, load_attribute):
            with contextlib.suppress(OstafError):
                reader(path)


def test_the_valid_sample_loads() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ok.safetensors"
        path.write_bytes(_valid_attribute_bytes())
        assert load_attribute(path).meta.rank == 2


@FUZZ
@given(st.data())
def test_mutated_attribute_files(data: st.DataObject) -> None:
    raw = bytearray(_valid_attribute_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _read_both(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))


@FUZZ
@given(header=JSON, payload=st.binary(max_size=64))
def test_arbitrary_safetensors_headers(header: object, payload: bytes) -> None:
    text = json.dumps(header).encode()
    _read_both(struct.pack("<Q", len(text)) + text + payload)


@FUZZ
@given(meta=st.dictionaries(st.sampled_from(sorted(_VALID_META)), JSON, max_size=8))
def test_arbitrary_metadata_values(meta: dict[str, object]) -> None:
    merged = {**_VALID_META, **meta}
    tensors = {f"{_TARGET}.A": torch.ones(3, 2), f"{_TARGET}.B": torch.ones(2, 5)}
    _read_both(save(tensors, metadata={"ostaf": json.dumps(merged)}))


def test_headers_that_claim_huge_tensors_allocate_nothing() -> None:
    header = {"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 1 << 42]}}
    text = json.dumps(header).encode()
    with pytest.raises(OstafError, match="not a readable"):
        _read_and_raise(struct.pack("<Q", len(text)) + text)
    with pytest.raises(OstafError):
        _read_and_raise(struct.pack("<Q", 1 << 60) + b"{}")


def test_deeply_nested_metadata_is_refused() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    tensors = {f"{_TARGET}.A": torch.ones(3, 2), f"{_TARGET}.B": torch.ones(2, 5)}
    with pytest.raises(OstafError):
        _read_and_raise(save(tensors, metadata={"ostaf": deep}))


def _read_and_raise(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.safetensors"
        path.write_bytes(data)
        load_attribute(path)


def _png_with_text(chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@FUZZ
@given(
    parameters=st.text(max_size=300),
    record=st.text(max_size=200),
    flips=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_png_metadata(parameters: str, record: str, flips: list[int]) -> None:
    raw = bytearray(_png_with_text({"parameters": parameters, "ostaf": record}))
    for flip in flips:
        raw[flip % len(raw)] ^= 0x5A
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        path.write_bytes(bytes(raw))
        try:
            text, parsed = read_png_metadata(path)
        except OstafError:
            return
        assert parsed is None or isinstance(parsed, dict)
        if text is not None:
            result = parse_a1111(text)
            assert set(result) == {"prompt", "negative_prompt", "values"}


@FUZZ
@given(document=JSON)
def test_project_json(document: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "project.json").write_text(json.dumps(document))
        with contextlib.suppress(OstafError):
            Project(Path(folder))


@FUZZ
@given(document=JSON, garbage=st.binary(max_size=40))
def test_settings_json(document: object, garbage: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"
        path.write_bytes(json.dumps(document).encode() + garbage)
        with contextlib.suppress(OstafError):
            load_settings(path)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_pickled_weights_in_a_model_folder_never_run_code(tmp_path: Path) -> None:
    import pickle

    from ostaf.models.base_model import load_base_model
    from ostaf.models.demo_model import write_demo_model

    folder = write_demo_model(tmp_path / "model")
    marker = tmp_path / "pwned"
    for weights, pickled in (
        (folder / "unet" / "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
        (folder / "text_encoder" / "model.safetensors", "pytorch_model.bin"),
    ):
        weights.unlink()
        (weights.parent / pickled).write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    for first in ("unet", "text_encoder"):  # whichever diffusers happens to open first
        only = folder.with_name(f"only-{first}")
        shutil.copytree(folder, only)
        other = "text_encoder" if first == "unet" else "unet"
        shutil.rmtree(only / other)
        shutil.copytree(write_demo_model(tmp_path / f"clean-{first}") / other, only / other)
        with pytest.raises(OstafError, match="pickled weights"):
            load_base_model(only, device="cpu")
    with pytest.raises(OstafError):
        load_base_model(folder, device="cpu")
    assert not marker.exists()


def test_pickle_checkpoints_are_refused_unread(tmp_path: Path) -> None:
    import pickle

    from ostaf.models.base_model import load_base_model

    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(OstafError, match="pickle checkpoints"):
        load_base_model(checkpoint, device="cpu")
    assert not marker.exists()


def test_names_from_files_never_pick_a_path(tmp_path: Path, home: Path) -> None:
    """An attribute named like a path is stored under its content hash, and its name only
    ever reaches file names through the slugging of batch templates."""
    from ostaf.library.attribute_file import save_attribute
    from ostaf.library.projects import ProjectStore
    from ostaf.models.base_model import load_base_model
    from ostaf.render.naming import NameTemplate
    from tests.core.attribute_factory import make_attribute

    model = load_base_model("demo", device="cpu")
    hostile = make_attribute(model, name="../../../etc/passwd")
    source = save_attribute(tmp_path / "hostile.safetensors", hostile)
    project = ProjectStore().create("../../escape")
    entry = project.import_attribute(source).entry
    project.release()
    assert entry.path.parent == project.attributes_dir
    assert project.folder.parent == ProjectStore().root
    name = NameTemplate("{attribute}_{seed}").fill({"attribute": entry.meta.name, "seed": "1"})
    assert "/" not in name and "\\" not in name and ".." not in name


def _valid_state_bytes() -> bytes:
    from ostaf.method.tuning_checkpoint import TuningState, state_bytes

    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    sampler = torch.Generator().manual_seed(0).get_state()
    state = TuningState("key", 1, [0.5], layer.state_dict(), optimizer.state_dict(), sampler)
    return state_bytes(state)


@FUZZ
@given(st.data())
def test_mutated_tuning_states(data: st.DataObject) -> None:
    """A saved tuning state read back: only DamagedStateError, never an unpickler."""
    from ostaf.method.tuning_checkpoint import DamagedStateError, load_state

    raw = bytearray(_valid_state_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.resume"
        path.write_bytes(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))
        with contextlib.suppress(DamagedStateError):
            load_state(path)


@FUZZ
@given(document=JSON)
def test_resume_sidecars(document: object) -> None:
    from ostaf.method.tuning_checkpoint import DamagedStateError, load_sidecar

    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "x.resume"
        state.write_bytes(b"state")
        (Path(folder) / "x.resume.json").write_text(json.dumps(document))
        with contextlib.suppress(DamagedStateError):
            record = load_sidecar(state)
            assert isinstance(record, dict)


# --- hostile diffusers model folders ------------------------------------------------------------

# One edit each, as the red team made them to a copy of the demo model (field report 2026-12,
# defect 5), plus a value only diffusers reads: (file, key, value, words the error must hold).
FOLDER_EDITS = [
    ("unet/config.json", "cross_attention_dim", "abc", "cross_attention_dim"),
    ("unet/config.json", "cross_attention_dim", [768], "cross_attention_dim"),
    ("unet/config.json", "in_channels", "x", "in_channels"),
    ("unet/config.json", "sample_size", 1e400, "sample_size"),
    ("unet/config.json", "sample_size", -8, "sample_size"),
    ("vae/config.json", "block_out_channels", "abc", "block_out_channels"),
    ("text_encoder/config.json", "hidden_size", "x", "hidden_size"),
    ("text_encoder/config.json", "hidden_size", 32, "cross_attention_dim is 64"),
    ("scheduler/scheduler_config.json", "num_train_timesteps", "abc", "num_train_timesteps"),
    ("scheduler/scheduler_config.json", "prediction_type", "evil", "prediction_type"),
    ("tokenizer/tokenizer_config.json", "model_max_length", -1, "model_max_length"),
    ("tokenizer/tokenizer_config.json", "model_max_length", 100, "77 positions"),
    ("unet/config.json", "conv_in_kernel", "3", "cannot load the model"),
]


def _edited_demo(tmp_path: Path, file: str, key: str, value: object) -> Path:
    from ostaf.models.demo_model import write_demo_model

    folder = write_demo_model(tmp_path / "demo")
    config = json.loads((folder / file).read_text())
    config[key] = value
    # json writes 1e400 as Infinity, which no JSON reader takes; the red team wrote the digits.
    (folder / file).write_text(json.dumps(config).replace("Infinity", "1e400"))
    return folder


def _one_line(message: str, *words: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message
    assert all(word in message for word in words), message


@pytest.mark.parametrize(("file", "key", "value", "words"), FOLDER_EDITS)
def test_hostile_model_folders_are_refused_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    file: str,
    key: str,
    value: object,
    words: str,
) -> None:
    """`sizes`, the model check and loading refuse each edit naming the file; values that
    used to fail only while rendering (the scheduler's, the tokenizer's, a negative size)
    are refused at load."""
    from ostaf.cli.main import main
    from ostaf.models.base_model import load_base_model
    from ostaf.models.model_check import check_model_source

    folder = _edited_demo(tmp_path, file, key, value)
    named = str(folder) if words == "cannot load the model" else str(folder / file)
    if words != "cannot load the model":  # diffusers alone reads that one, when loading
        assert main(["sizes", "--model", str(folder)]) == 2
        _one_line(capsys.readouterr().err, named, words)
        with pytest.raises(OstafError) as info:
            check_model_source(str(folder))
        _one_line(str(info.value), named, words)
    with pytest.raises(OstafError) as info:
        load_base_model(folder, device="cpu")
    _one_line(str(info.value), named, words)


def test_deeply_nested_model_index_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ostaf.cli.main import main
    from ostaf.models.demo_model import write_demo_model

    folder = write_demo_model(tmp_path / "demo")
    (folder / "model_index.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["sizes", "--model", str(folder)]) == 2
    _one_line(capsys.readouterr().err, str(folder / "model_index.json"), "recursion limit")


def test_edm_scheduler_folders_are_refused(tmp_path: Path) -> None:
    """Playground v2.5's diffusers folder: SDXL's layout with an EDM scheduler."""
    from ostaf.models.model_check import check_model_source

    folder = _edited_demo(
        tmp_path, "scheduler/scheduler_config.json", "_class_name", "EDMDPMSolverMultistepScheduler"
    )
    with pytest.raises(OstafError, match="EDM model") as info:
        check_model_source(str(folder))
    _one_line(str(info.value), "EDMDPMSolverMultistepScheduler", "cannot run")
