"""Attribute files: bit-exact round trips, and clear errors for everything else."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ostaf.errors import AttributeFileError, IncompatibleModelError
from ostaf.images import image_from_data_url, load_reference
from ostaf.library.attribute_file import Attribute, check_compatible, load_attribute, save_attribute
from ostaf.library.attribute_meta import read_meta
from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind
from ostaf.method.tuning import tune
from ostaf.models.base_model import BaseModel
from ostaf.render.rendering import render
from ostaf.requests import RenderSettings, TuningSettings


@pytest.fixture(scope="module")
def tuned(demo: BaseModel, tmp_path_factory: pytest.TempPathFactory) -> Attribute:
    from tests.core.conftest import draw_reference

    path = tmp_path_factory.mktemp("ref") / "ref.png"
    draw_reference().save(path)
    reference = load_reference(path, demo.resolution)
    settings = TuningSettings(kind=AttributeKind.APPEARANCE, steps=8, seed=1)
    return tune(demo, reference, settings, name="red circle").attribute


def test_save_load_render_is_bit_identical(
    model: BaseModel, tuned: Attribute, tmp_path: Path
) -> None:
    path = save_attribute(tmp_path / "a.safetensors", tuned)
    loaded = load_attribute(path)
    assert loaded.meta == tuned.meta
    assert all(
        torch.equal(loaded.factors[k][i], tuned.factors[k][i])
        for k in tuned.factors
        for i in (0, 1)
    )
    settings = RenderSettings(prompt="a photo of a sks object", seeds=[5], steps=6)
    before = render(model, settings, [(tuned, 1.0)])[0].image
    after = render(model, settings, [(loaded, 1.0)])[0].image
    assert before.tobytes() == after.tobytes()


def test_metadata_describes_the_attribute(
    tuned: Attribute, tmp_path: Path, model: BaseModel
) -> None:
    path = save_attribute(tmp_path / "a.safetensors", tuned)
    meta = read_meta(path)
    assert meta.kind is AttributeKind.APPEARANCE
    assert meta.region.blocks == ("up_blocks",)
    assert meta.rank == 4
    assert meta.base_model.architecture == model.architecture
    assert meta.base_model.fingerprint == model.fingerprint
    assert len(meta.reference.sha256) == 64
    assert image_from_data_url(meta.reference.thumbnail).size[0] <= 96
    assert meta.tuning["steps"] == 8 and meta.tuning["seed"] == 1
    assert meta.tuning["token"] == DEFAULT_TOKEN
    assert meta.tuning["prompt"] == f"a photo of a {DEFAULT_TOKEN} object"
    assert meta.tuning["caption"] == ""  # no description given: the template prompt
    assert (meta.tuning["timestep_low"], meta.tuning["timestep_high"]) == (0.0, 1.0)
    assert meta.created_at == "2026-01-01T00:00:00Z"  # SOURCE_DATE_EPOCH


def test_truncated_file_is_refused_by_name(tuned: Attribute, tmp_path: Path) -> None:
    path = save_attribute(tmp_path / "a.safetensors", tuned)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AttributeFileError, match=r"a\.safetensors.*truncated or corrupt"):
        load_attribute(path)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "g.safetensors"
    garbage.write_bytes(b"\x00" * 3)
    with pytest.raises(AttributeFileError, match=r"g\.safetensors"):
        load_attribute(garbage)
    with pytest.raises(AttributeFileError, match="no such attribute file"):
        load_attribute(tmp_path / "missing.safetensors")


def test_foreign_safetensors_is_not_an_attribute(tmp_path: Path) -> None:
    lora = tmp_path / "lora.safetensors"
    save_file(
        {"lora_unet_x.lora_down.weight": torch.zeros(4, 8)}, lora, metadata={"ss_network_dim": "4"}
    )
    with pytest.raises(AttributeFileError, match="not an OSTAF attribute"):
        load_attribute(lora)


def test_damaged_metadata_and_values(tuned: Attribute, tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    tensors = {
        f"{k}.{n}": t for k, (a, b) in tuned.factors.items() for n, t in (("A", a), ("B", b))
    }
    save_file(tensors, path, metadata={"ostaf": "{not json"})
    with pytest.raises(AttributeFileError, match="metadata is damaged"):
        load_attribute(path)
    data = json.loads(tuned.meta.to_json())
    data["format_version"] = 99
    save_file(tensors, path, metadata={"ostaf": json.dumps(data)})
    with pytest.raises(AttributeFileError, match="version 99 is not supported"):
        load_attribute(path)
    first = next(iter(tuned.factors))
    bad = dict(tensors)
    bad[f"{first}.A"] = torch.full_like(tensors[f"{first}.A"], float("nan"))
    save_file(bad, path, metadata={"ostaf": tuned.meta.to_json()})
    with pytest.raises(AttributeFileError, match="NaN"):
        load_attribute(path)
    bad[f"{first}.A"] = torch.zeros(3, 3)
    save_file(bad, path, metadata={"ostaf": tuned.meta.to_json()})
    with pytest.raises(AttributeFileError, match="shapes"):
        load_attribute(path)


def test_attribute_for_another_model_is_refused(tuned: Attribute, model: BaseModel) -> None:
    other = dataclasses.replace(
        tuned.meta,
        base_model=dataclasses.replace(tuned.meta.base_model, architecture="0" * 16, name="SD 2.1"),
    )
    with pytest.raises(IncompatibleModelError, match=r"SD 2\.1.*tune again on this one"):
        check_compatible(Attribute(other, tuned.factors), model)
    finetune = dataclasses.replace(
        tuned.meta,
        base_model=dataclasses.replace(
            tuned.meta.base_model, fingerprint="f" * 16, name="my finetune"
        ),
    )
    warnings = check_compatible(Attribute(finetune, tuned.factors), model)
    assert warnings and "my finetune" in warnings[0]
    assert check_compatible(tuned, model) == []


def test_a_failed_save_keeps_the_old_file(
    tuned: Attribute, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from ostaf.errors import StorageError

    path = save_attribute(tmp_path / "a.safetensors", tuned)
    old = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    renamed = Attribute(dataclasses.replace(tuned.meta, name="renamed"), tuned.factors)
    with pytest.raises(StorageError, match="disk full"):
        save_attribute(path, renamed)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
