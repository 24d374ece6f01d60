"""`python -m ostaf batch …`: render a grid of variations, alone or sharded over processes.

Under `accelerate launch` every process renders the cells i with i mod N == its index, and
the main process writes the contact sheet once all are done; the files are the same as those
of a single-process run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from ostaf.cli.numbers import whole
from ostaf.cli.options import (
    add_guidance_argument,
    add_model_arguments,
    add_schedule_argument,
    model_choice,
)
from ostaf.cli.terminal import err, out
from ostaf.errors import Cancelled, SettingsError
from ostaf.limits import MAX_IMAGES
from ostaf.progress import CancelToken, ProgressCallback, ignore_progress
from ostaf.render.batch_plan import (
    SHEET_AXES,
    AttributeChoice,
    BatchJob,
    BatchRequest,
    combinations_of,
    parse_intensities,
    read_prompts,
)
from ostaf.render.naming import DEFAULT_TEMPLATE
from ostaf.requests import SAMPLERS, RenderSettings, parse_seeds, parse_size

_INTENSITIES = re.compile(r"[0-9.,\s]+")


def _nothing() -> None:
    """No other process to wait for."""


def add_batch_command(sub: argparse._SubParsersAction) -> None:
    """Register `batch`."""
    batch = sub.add_parser(
        "batch", help="render prompts × seeds × intensities × attributes into an output folder"
    )
    prompts = batch.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompt", action="append", help="a prompt; repeatable")
    prompts.add_argument("--prompts", type=Path, help="a text file with one prompt per line")
    batch.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="FILE[:LAMBDAS]",
        help="an attribute file, optionally with its own intensities (look.safetensors:0.5,1)",
    )
    batch.add_argument(
        "--combine",
        choices=["together", "each", "subsets"],
        default="together",
        help="apply the attributes together (default), each alone, or every subset",
    )
    seeds = batch.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", help="e.g. 1,2,3 or 10-19 (default 0)")
    seeds.add_argument("--count", type=whole, help="this many seeds: 0, 1, … count-1")
    batch.add_argument(
        "--intensity", help="λ values for attributes without their own, e.g. 0.5,1,1.5"
    )
    batch.add_argument("--out", type=Path, help="output folder (default: the project's exports)")
    batch.add_argument("--project", help="a project: its library resolves ids and names")
    batch.add_argument("--template", default=DEFAULT_TEMPLATE, help="output file names")
    batch.add_argument("--contact-sheet", action="store_true", help="also write one sheet PNG")
    batch.add_argument(
        "--sheet-columns",
        default="attribute,lambda",
        help=f"grid axes across the sheet (of {', '.join(SHEET_AXES)}); the others go down",
    )
    batch.add_argument("--overwrite", action="store_true", help="replace images of other runs")
    batch.add_argument("--negative", default="", help="negative prompt")
    batch.add_argument("--steps", type=whole, default=RenderSettings.steps)
    add_guidance_argument(batch)
    batch.add_argument("--size", help="WxH (default: the model's resolution)")
    batch.add_argument("--sampler", choices=SAMPLERS, default=RenderSettings.sampler)
    add_schedule_argument(batch)
    add_model_arguments(batch)
    batch.set_defaults(handler=run_batch_command)


def parse_choice(text: str, resolve: Callable[[str], Path]) -> AttributeChoice:
    """'FILE' or 'FILE:0.5,1' (a Windows drive colon is left alone)."""
    path_text, sep, tail = text.rpartition(":")
    if sep and _INTENSITIES.fullmatch(tail):
        return AttributeChoice(resolve(path_text), parse_intensities(tail))
    return AttributeChoice(resolve(text))


def build_job(args: argparse.Namespace) -> BatchJob:
    """The batch job the arguments describe (attributes resolved, nothing loaded)."""
    from ostaf.library.projects import ProjectStore

    project = ProjectStore().find(args.project) if args.project else None  # read only

    def resolve(ref: str) -> Path:
        path = Path(ref)
        if path.is_file() or project is None:
            return path
        return project.find_attribute(ref).path

    if args.count is not None:
        if not 1 <= args.count <= MAX_IMAGES:
            raise SettingsError(f"--count {args.count} must be in 1..{MAX_IMAGES}")
        seeds = list(range(args.count))
    else:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else [0]
    out = args.out or (project.output_folder() if project else None)  # a link is refused
    if out is None:
        raise SettingsError("give an output folder with --out (or a --project)")
    width, height = parse_size(args.size) if args.size else (None, None)
    choices = [parse_choice(a, resolve) for a in args.attribute]
    request = BatchRequest(
        prompts=read_prompts(args.prompts) if args.prompts else list(args.prompt),
        seeds=seeds,
        out_dir=out,
        combinations=combinations_of(choices, args.combine),
        intensities=list(parse_intensities(args.intensity)) if args.intensity else [],
        negative_prompt=args.negative,
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
        sampler=args.sampler,
        schedule=args.schedule,
        template=args.template,
        project=project.slug if project else "",
        contact_sheet=args.contact_sheet,
        sheet_columns=tuple(a.strip() for a in args.sheet_columns.split(",") if a.strip()),
        overwrite=args.overwrite,
    )
    return BatchJob(request, model_choice(args))


@dataclass
class Processes:
    """Where this process stands among those rendering one batch."""

    index: int = 0
    count: int = 1
    barrier: Callable[[], None] = _nothing
    main_first: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext


@contextlib.contextmanager
def processes(device: str) -> Iterator[Processes]:
    """This process's place: alone, unless started by `accelerate launch` (or torchrun)
    with several; on CPUs accelerate then needs `cpu=True` to join them over gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        if (
            os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
            and "MASTER_ADDR" in os.environ
        ):
            err(
                "warning: `accelerate launch --cpu` started one process (it needs MPI for more); "
                "to split a batch over CPU processes use `accelerate launch --multi_gpu "
                "--num_processes N -m ostaf batch … --device cpu`"
            )
        yield Processes()
        return
    from accelerate import PartialState

    if device == "auto":
        from ostaf.models.devices import available_devices

        device = available_devices()[0]
    state = PartialState(cpu=device == "cpu")
    try:
        yield Processes(
            state.process_index,
            state.num_processes,
            state.wait_for_everyone,
            state.main_process_first,
        )
    finally:
        state.destroy_process_group()


def run_batch_command(
    args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken
) -> int:
    from ostaf.render.batch import Shard
    from ostaf.service import OstafService

    job = build_job(args)
    service = OstafService()
    with processes(job.model.device) as group:
        shard = Shard(group.index, group.count, group.barrier)
        if not shard.is_main:
            progress = ignore_progress  # one progress bar, the main process's
        # The main process loads (and on a fresh machine builds) the model before the others.
        with group.main_first():
            service.model(job.model, progress, cancel)
        try:
            outcome = service.batch(job, progress, cancel, shard)
        except Cancelled:
            err("cancelled; finished images are kept, and running the same command again resumes")
            return 130
    # Each line in one write (out/err): the processes of a sharded run share stdout and stderr.
    for warning in outcome.warnings:
        err(f"warning: {warning}")
    for path in outcome.written:
        out(path)
    if outcome.sheet is not None:
        out(outcome.sheet)
    who = f"process {shard.index + 1}/{shard.count}: " if shard.count > 1 else ""
    err(
        f"{who}{len(outcome.written)} rendered, {len(outcome.skipped)} already complete "
        f"(batch of {outcome.total})"
    )
    return 0
