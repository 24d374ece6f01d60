"""`accelerate launch` with two CPU processes renders every cell exactly once, and the files
(images and contact sheet) are byte for byte those of a single-process run.

The processes talk over the loopback interface only (gloo); nothing leaves the machine.
On CPUs the thread count changes floating-point rounding, so the single-process reference
runs with one thread, as each launched process does (torchrun sets OMP_NUM_THREADS=1). Both
sides are this program on this machine, loading the model the same way (into 64-byte aligned
memory of their own, base_model._own_memory), so they run the same kernels: bit equality is
the claim here, not an accident of one CPU.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from ostaf.library.attribute_file import save_attribute
from ostaf.models.base_model import BaseModel
from ostaf.render.batch import run_batch
from ostaf.render.batch_plan import AttributeChoice, BatchRequest, plan_batch
from tests.core.attribute_factory import make_attribute
from tests.core.test_batch import FAST, FAST_ARGS

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_processes_render_each_cell_once_and_match_one(
    model: BaseModel, home: Path, tmp_path: Path
) -> None:
    attribute = make_attribute(model, seed=3, name="Blue glaze")
    path = save_attribute(tmp_path / "look.safetensors", attribute)
    sharded = tmp_path / "sharded"
    env = {
        **os.environ,
        "OSTAF_HOME": str(home),
        "HF_HOME": str(tmp_path / "hf"),  # no accelerate config of this machine's user
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        "-m", "ostaf", "batch", "--prompt", "a red vase", "--attribute", f"{path}:0.5,1.5",
        "--seeds", "1,2", "--out", str(sharded), "--contact-sheet", "--model", "demo",
        "--device", "cpu", *FAST_ARGS,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [Path(line).name for line in result.stdout.split()]
    cells = [name for name in printed if name != "contact-sheet.png"]
    assert len(cells) == len(set(cells)) == 4  # every cell exactly once
    assert "process 1/2: 2 rendered" in result.stderr
    assert "process 2/2: 2 rendered" in result.stderr

    single = tmp_path / "single"
    request = BatchRequest(
        prompts=["a red vase"],
        seeds=[1, 2],
        out_dir=single,
        combinations=[[AttributeChoice(path, (0.5, 1.5))]],
        contact_sheet=True,
        **FAST,  # type: ignore[arg-type]
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_batch(model, plan_batch(request, {path: attribute.meta}), {path: attribute})
    finally:
        torch.set_num_threads(threads)
    names = sorted(p.name for p in single.iterdir())
    assert names == sorted(p.name for p in sharded.iterdir()) == sorted(printed)
    for name in names:
        assert (single / name).read_bytes() == (sharded / name).read_bytes(), name
