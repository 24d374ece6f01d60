"""Batch export: render the cells of a plan to PNGs — resumable, cancellable, shardable.

Every cell's image depends only on its own prompt, seed and attributes (one seeded generator
per image), so any split of the cells over processes writes the same files as one process.
A re-run skips files that are complete and carry the metadata of their cell; damaged ones
are rendered again, but only when their record shows this app wrote them (it fits the
record's schema): anything else is another tool's, replaced only with `overwrite`. Files are
written atomically, so a crash or a full disk leaves every finished image valid.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ostaf.errors import InputImageError, SettingsError, StorageError
from ostaf.images import opened
from ostaf.interop.pngmeta import ImageRecord, record_of, write_png
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.attribute_file import Attribute
from ostaf.limits import MAX_SIDE
from ostaf.models.base_model import BaseModel
from ostaf.progress import CancelToken, Progress, ProgressCallback, StepClock, ignore_progress
from ostaf.render.batch_plan import BatchPlan, Cell
from ostaf.render.contact_sheet import build_contact_sheet
from ostaf.render.rendering import render
from ostaf.requests import effective_schedule

PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
SHEET_KEY = "ostaf-contact-sheet"


def _no_barrier() -> None:
    """Single-process runs have nobody to wait for."""


@dataclass
class Shard:
    """This process's share of a batch: cells i with i mod count == index."""

    index: int = 0
    count: int = 1
    barrier: Callable[[], None] = _no_barrier  # returns once every process got there

    @property
    def is_main(self) -> bool:
        return self.index == 0


@dataclass
class BatchOutcome:
    """What this process did: files written, files found complete, the contact sheet."""

    written: list[Path]
    skipped: list[Path]
    total: int  # cells in the whole batch, over all processes
    sheet: Path | None = None
    warnings: list[str] = field(default_factory=list)


def expected_record(
    cell: Cell, plan: BatchPlan, model: BaseModel, hashes: Mapping[Path, str]
) -> dict[str, Any]:
    """The fields of a cell's JSON record that decide whether an existing file is that cell."""
    request = plan.request
    return {
        "prompt": cell.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": cell.seed,
        "steps": request.steps,
        "guidance": model.guidance if request.guidance is None else request.guidance,
        "sampler": request.sampler,
        "schedule": effective_schedule(request.sampler, request.schedule),
        "width": request.width or model.resolution,
        "height": request.height or model.resolution,
        "model": model.fingerprint,
        "attributes": [[hashes[a.path], a.intensity] for a in cell.variant.applied],
    }


def _record_fields(record: ImageRecord) -> dict[str, Any]:
    return {
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "seed": record.seed,
        "steps": record.steps,
        "guidance": record.guidance,
        "sampler": record.sampler,
        "schedule": record.schedule,  # older records: the model's own (the schema's default)
        "width": record.width,
        "height": record.height,
        "model": record.model.fingerprint,
        "attributes": [[a.content_hash, a.intensity] for a in record.attributes],
    }


def file_state(path: Path, expected: Mapping[str, Any]) -> str:
    """'missing', 'complete' (this cell's image, whole), 'damaged' (its record shows this
    app wrote it, but it is torn or undecodable: render again), 'different' (this app's PNG
    of other settings) or 'foreign' (no record of this app's: another tool's file)."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "foreign"
    record = None
    try:
        with opened(path, str(path), MAX_SIDE * MAX_SIDE) as img:
            if img.format != "PNG":
                return "foreign"
            # The text chunks this app writes come before the pixels: readable in a torn file.
            record = record_of(img.info).record
            if record is None:
                return "foreign"
            with path.open("rb") as handle:
                handle.seek(max(0, path.stat().st_size - len(PNG_END)))
                whole = handle.read() == PNG_END
            img.load()  # decodes every pixel: a truncated file fails here
    except InputImageError:
        return "foreign"  # far larger than anything rendered here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        # Damaged when its record shows this app wrote it; else nothing says it is ours.
        return "foreign" if record is None else "damaged"
    if not whole:
        return "damaged"
    return "complete" if _record_fields(record) == dict(expected) else "different"


def run_batch(
    model: BaseModel,
    plan: BatchPlan,
    attributes: Mapping[Path, Attribute],
    shard: Shard | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> BatchOutcome:
    """Render this process's cells that are not complete yet; then, on the main process and
    once every process is done, the contact sheet."""
    shard = shard or Shard()
    cancel = cancel or CancelToken()
    request = plan.request
    hashes = {path: attribute.content_hash() for path, attribute in attributes.items()}
    out = request.out_dir
    states = {
        c.index: file_state(out / c.file_name, expected_record(c, plan, model, hashes))
        for c in plan.cells
    }
    _refuse_conflicts(plan, states)
    plan.make_output_folder()
    mine = plan.shard(shard.index, shard.count)
    todo = [c for c in mine if states[c.index] != "complete"]
    outcome = BatchOutcome(
        written=[],
        skipped=[out / c.file_name for c in mine if states[c.index] == "complete"],
        total=len(plan.cells),
    )
    clock = StepClock(max(1, len(todo) * request.steps))
    for number, cell in enumerate(todo):
        cancel.check()
        done_steps = number * request.steps

        message = f"{number + 1}/{len(todo)} {cell.file_name}"

        def on_step(report: Progress, done_steps: int = done_steps, message: str = message) -> None:
            if report.stage == "rendering" and report.step <= request.steps:
                progress(clock.report("batch", done_steps + report.step, message=message))

        applied = [(attributes[a.path], a.intensity) for a in cell.variant.applied]
        image = render(
            model, request.render_settings(cell.prompt, [cell.seed]), applied, on_step, cancel
        )[0]
        if request.project:
            image.record["project"] = request.project
        cancel.check()
        target = out / cell.file_name
        try:
            write_png(target, image.image, image.parameters, image.record, make_folder=False)
        except StorageError as exc:
            raise StorageError(
                f"{exc}; the {len(outcome.written) + len(outcome.skipped)} images finished "
                "before are complete, and running the same batch again resumes"
            ) from exc
        outcome.written.append(target)
        outcome.warnings.extend(w for w in image.warnings if w not in outcome.warnings)
    shard.barrier()
    if shard.is_main and plan.sheet_name:
        outcome.sheet, missing = write_contact_sheet(plan)
        if missing:
            outcome.warnings.append(
                f"{missing} images were missing from the contact sheet (shown grey)"
            )
    return outcome


def _refuse_conflicts(plan: BatchPlan, states: Mapping[int, str]) -> None:
    out = plan.request.out_dir
    foreign = [c for c in plan.cells if states[c.index] == "foreign"]
    different = [c for c in plan.cells if states[c.index] == "different"]
    if foreign and not plan.request.overwrite:
        raise SettingsError(
            f"{out / foreign[0].file_name} exists and was not rendered by OSTAF "
            f"({len(foreign)} such files); choose another output folder or template, "
            "or replace them (--overwrite, or 'Replace images…' in the batch dialog)"
        )
    if different and not plan.request.overwrite:
        raise SettingsError(
            f"{out / different[0].file_name} was rendered with other settings "
            f"({len(different)} such files); choose another output folder or template, "
            "or replace them (--overwrite, or 'Replace images…' in the batch dialog)"
        )
    for cell in foreign:
        if not (out / cell.file_name).is_file():
            raise SettingsError(f"{out / cell.file_name} is a folder; it cannot be replaced")


def write_contact_sheet(plan: BatchPlan) -> tuple[Path, int]:
    """Assemble the sheet from the files on disk; returns its path and the missing count."""
    assert plan.sheet_name is not None
    out = plan.request.out_dir
    images: dict[int, Image.Image] = {}
    for cell in plan.cells:
        try:
            with opened(out / cell.file_name, cell.file_name, MAX_SIDE * MAX_SIDE) as img:
                img.load()
                images[cell.index] = img.copy()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError, InputImageError):
            continue  # shown grey and counted as missing
    if not images:
        raise StorageError(f"no rendered images in {out} to build a contact sheet from")
    sheet = build_contact_sheet(plan.cells, images, plan.request.sheet_columns)
    info = PngImagePlugin.PngInfo()
    layout = {
        "columns": list(plan.request.sheet_columns),
        "files": [c.file_name for c in plan.cells],
    }
    info.add_itxt(SHEET_KEY, json.dumps(layout, sort_keys=True))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", pnginfo=info)
    target = out / plan.sheet_name
    atomic_write_bytes(target, buffer.getvalue(), make_folder=False)
    return target, len(plan.cells) - len(images)
