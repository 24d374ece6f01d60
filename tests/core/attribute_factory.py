"""Attributes with random factors of the right shapes, made in milliseconds (for the library,
batch and LoRA tests, which need real attribute files but not a tuned one), and a fixture
that runs torch on one thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ostaf.images import thumbnail_data_url
from ostaf.library.attribute_file import Attribute, save_attribute
from ostaf.library.attribute_meta import AttributeMeta, BaseModelInfo, ReferenceInfo
from ostaf.method.regions import REGION_BY_KIND, AttributeKind, Region
from ostaf.models.base_model import BaseModel
from tests.core.conftest import draw_reference


def make_attribute(
    model: BaseModel,
    kind: AttributeKind = AttributeKind.APPEARANCE,
    seed: int = 0,
    name: str = "",
    scale: float = 0.2,
    rank: int = 4,
    default_lambda: float = 1.0,
    region: Region | None = None,
    word: str = "",
) -> Attribute:
    """A valid attribute for `model` with seeded random factors A (out, r), B (r, in), named
    in prompts by `word` (none recorded: `sks`, as in files from before words)."""
    region = region or REGION_BY_KIND[kind]
    paths = sorted(region.select(n for n, _ in model.unet.named_modules()))
    generator = torch.Generator().manual_seed(seed)
    factors = {}
    for path in paths:
        layer = model.unet.get_submodule(path)
        assert isinstance(layer, torch.nn.Linear)
        a = torch.randn(layer.out_features, rank, generator=generator) * scale
        b = torch.randn(rank, layer.in_features, generator=generator) * scale
        factors[path] = (a, b)
    meta = AttributeMeta(
        name=name or f"{kind} {seed}",
        kind=kind,
        region=region,
        targets=paths,
        rank=rank,
        base_model=BaseModelInfo(model.name, model.architecture, model.fingerprint),
        reference=ReferenceInfo(
            sha256=f"{seed:064x}",
            width=96,
            height=96,
            thumbnail=thumbnail_data_url(draw_reference(colour="blue")),
            file_name=f"reference-{seed}.png",
        ),
        tuning={
            "steps": 0,
            "resolution": model.resolution,
            "family": model.family.id,
            **({"token": word} if word else {}),
        },
        default_lambda=default_lambda,
    )
    return Attribute(meta, factors)


def write_attribute(model: BaseModel, path: Path, **kwargs: object) -> Path:
    """make_attribute(...) saved to `path`."""
    return save_attribute(path, make_attribute(model, **kwargs))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Import into a test module to run its tests on one torch thread: on a shared 2-core CPU
    OpenMP's barriers wait for descheduled threads (a 32 px render measured 0.04 s of CPU
    with one thread, 0.5 s with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
