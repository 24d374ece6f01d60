"""Re-open a rendered image's settings: its PNG metadata back into RenderSettings, with the
attribute files found by content in the project libraries (no torch here).

Our own JSON chunk gives everything, attributes by content hash; a PNG from another tool
with only the A1111 `parameters` text still gives prompt, seed and sampling settings. A value
the renderer would refuse (checked by RenderSettings' own rules) is reset to its default, and
the result says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ostaf.errors import AttributeFileError, InputImageError, SettingsError
from ostaf.interop.pngmeta import (
    SAMPLER_LABELS,
    SCHEDULE_LABELS,
    ImageRecord,
    parse_a1111,
    read_png,
)
from ostaf.library.attribute_meta import read_meta
from ostaf.library.projects import Project
from ostaf.method.words import attribute_word, replace_word
from ostaf.requests import AppliedAttribute, RenderSettings, parse_size

SAMPLER_BY_LABEL = {label: name for name, label in SAMPLER_LABELS.items()}
# The RenderSettings fields a recall fills, checked one group at a time (a size as a whole).
RECALLED_FIELDS = (
    ("seeds",),
    ("steps",),
    ("guidance",),
    ("width", "height"),
    ("sampler",),
    ("schedule",),
)
SCHEDULE_BY_LABEL = {label: name for name, label in SCHEDULE_LABELS.items()}


@dataclass
class RecalledAttribute:
    """An attribute an image was rendered with, and where it is now (if anywhere)."""

    name: str
    kind: str
    intensity: float
    content_hash: str
    file: str = ""  # the library file's id when rendered (given another word, it stays)
    word: str = ""  # the word it had when rendered ("" in older images)
    path: Path | None = None  # the live library file
    trashed: Path | None = None  # found only in a project's trash


@dataclass
class Recall:
    """The settings of a rendered image, ready for the rendering panel."""

    settings: RenderSettings  # attributes: those found in a library
    attributes: list[RecalledAttribute]
    model_name: str = ""
    model_source: str = ""
    model_fingerprint: str = ""
    complete: bool = True  # False when only A1111 text was found
    warnings: list[str] = field(default_factory=list)
    # Values the renderer would refuse, each reset to its default: one line each, to show.
    resets: list[str] = field(default_factory=list)


def recall_image(path: Path | str, projects: Sequence[Project] = ()) -> Recall:
    """The settings `path` was rendered with; attributes are looked up by content hash in
    `projects` (the image's own project first, when it names one)."""
    path = Path(path)
    found = read_png(path)
    if found.record is not None:
        recall = _from_record(found.record, projects)
    elif found.parameters is not None:
        recall = _from_parameters(found.parameters)
        if found.problem:
            recall.warnings.insert(0, f"{path.name}: {found.problem}")
    elif found.problem:
        raise InputImageError(f"{path}: {found.problem}")
    else:
        raise InputImageError(f"{path} carries no generation parameters to re-open")
    recall.resets = _reset_refused(recall)
    return recall


def _reset_refused(recall: Recall) -> list[str]:
    """Reset each value of `recall` that RenderSettings.validate refuses to its default,
    field by field (so one bad value keeps the others); what was reset, one line each."""
    settings, notes = recall.settings, []
    defaults = RenderSettings(prompt="x")
    for names in RECALLED_FIELDS:
        try:
            replace(defaults, **{name: getattr(settings, name) for name in names}).validate()
        except SettingsError as exc:
            for name in names:  # a size is reset as a whole
                setattr(settings, name, getattr(defaults, name))
            shown = getattr(defaults, names[0])
            if shown is None:  # the model's own size or guidance
                shown = "the model's size" if names[0] == "width" else "the model's own"
            notes.append(f"{exc} (reset to {shown})")
    for item in recall.attributes:
        try:
            AppliedAttribute(Path(item.content_hash[:8]), item.intensity).validate()
        except SettingsError as exc:
            item.intensity = 1.0
            notes.append(f"{exc} ('{item.name}'; reset to 1)")
    settings.attributes = [
        AppliedAttribute(item.path, item.intensity)
        for item in recall.attributes
        if item.path is not None
    ]
    return notes


def _from_record(record: ImageRecord, projects: Sequence[Project]) -> Recall:
    settings = RenderSettings(
        prompt=record.prompt,
        negative_prompt=record.negative_prompt,
        seeds=[record.seed],
        steps=record.steps,
        guidance=record.guidance,
        width=record.width,
        height=record.height,
        sampler=record.sampler,
        schedule=record.schedule,
    )
    wanted = [
        RecalledAttribute(
            name=item.name,
            kind=item.kind,
            intensity=item.intensity,
            content_hash=item.content_hash,
            file=item.file,
            word=item.word,
        )
        for item in record.attributes
    ]
    ordered = sorted(projects, key=lambda p: p.slug != record.project)
    warnings = []
    for item in wanted:
        _locate(item, ordered)
        if item.path is not None:
            settings.attributes.append(AppliedAttribute(item.path, item.intensity))
            shared = sum(other.word.lower() == item.word.lower() for other in wanted) > 1
            warnings += _follow_word(item, item.path, settings, shared)
        elif item.trashed is not None:
            warnings.append(f"'{item.name}' is in the trash ({item.trashed}); restore it first")
        else:
            warnings.append(f"'{item.name}' is not in any project library; import its file")
    return Recall(
        settings=settings,
        attributes=wanted,
        model_name=record.model.name,
        model_source=record.model.source,
        model_fingerprint=record.model.fingerprint,
        warnings=warnings,
    )


def _locate(item: RecalledAttribute, projects: Sequence[Project]) -> None:
    """Find the attribute by its content, else by its file (an attribute given another word
    keeps its file, not its content)."""
    for key in dict.fromkeys(k for k in (item.content_hash, item.file) if k):
        for project in projects:
            live, trashed = project.locate_attribute(key)  # links never followed
            if live is not None:
                item.path = live
                return
            if item.trashed is None and trashed is not None:
                item.trashed = trashed


def _follow_word(
    item: RecalledAttribute, path: Path, settings: RenderSettings, shared: bool
) -> list[str]:
    """When the attribute was given another word since the image was rendered, the prompt
    is written with the new one (at λ 1 it renders as the old did), unless another of the
    image's attributes had the same word (which one each place meant is not known); a note
    says so."""
    try:
        now = attribute_word(read_meta(path))
    except AttributeFileError:
        return []  # applying it reports the damage, naming the file
    if not item.word or item.word.lower() == now.lower():
        return []
    if shared:
        return [f"'{item.name}' is now written {now} (was {item.word}): write {now} where it goes"]
    settings.prompt = replace_word(settings.prompt, item.word, now)
    settings.negative_prompt = replace_word(settings.negative_prompt, item.word, now)
    return [f"'{item.name}' is now written {now} (was {item.word}): the prompt says {now}"]


def _sampling_from_parameters(values: dict[str, str], settings: RenderSettings) -> list[str]:
    """Sampler and schedule from A1111 text, read as A1111/Forge 1.9+ read it: a missing
    "Schedule type" is "Automatic" (Karras for DPM++ 2M, Uniform for Euler), and older
    versions wrote the schedule into the sampler's name ("DPM++ 2M Karras")."""
    label = values.get("Sampler", "")
    schedule_label = values.get("Schedule type", "Automatic")
    if label.endswith(" Karras") and label.removesuffix(" Karras") in SAMPLER_BY_LABEL:
        label, schedule_label = label.removesuffix(" Karras"), "Karras"
    sampler = SAMPLER_BY_LABEL.get(label)
    if sampler is None:
        if label:
            return [f"sampler {label!r} is not available; using the default"]
        return []
    settings.sampler = sampler
    if sampler == "ddim":
        return []
    if schedule_label == "Automatic" and sampler == "dpmpp2m":
        schedule_label = "Karras"
    schedule = SCHEDULE_BY_LABEL.get(schedule_label)
    if schedule is None:
        shown = "Automatic (Uniform)" if schedule_label == "Automatic" else schedule_label
        return [f"schedule {shown!r} is not available; using {settings.schedule}"]
    settings.schedule = schedule
    return []


def _from_parameters(text: str) -> Recall:
    parsed = parse_a1111(text)
    values = parsed["values"]
    settings = RenderSettings(prompt=parsed["prompt"], negative_prompt=parsed["negative_prompt"])
    warnings = ["only the A1111 parameters were found: attributes cannot be re-applied"]
    try:
        if "Seed" in values:
            settings.seeds = [int(values["Seed"])]
        if "Steps" in values:
            settings.steps = int(values["Steps"])
        if "CFG scale" in values:
            guidance = float(values["CFG scale"])
            settings.guidance = guidance if math.isfinite(guidance) else settings.guidance
        if "Size" in values:
            settings.width, settings.height = parse_size(values["Size"])
    except (ValueError, SettingsError) as exc:  # keep what could be read
        warnings.append(f"some parameters could not be read ({exc})")
    warnings += _sampling_from_parameters(values, settings)
    return Recall(
        settings=settings,
        attributes=[],
        model_name=str(values.get("Model", "")),
        complete=False,
        warnings=warnings,
    )
