"""What a batch export renders: the grid of prompts × attribute settings × seeds, each cell
with its own file name (no torch here, so the GUI can preview a plan before loading a model).

The grid's order is fixed (prompt, then attribute combination and intensities, then seed) so
that every process of a sharded run sees the same cells with the same indices: cell i is
rendered by process i mod N.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ostaf.errors import SettingsError, StorageError
from ostaf.file_reading import MiB, UnreadableFileError, read_regular_text
from ostaf.library.atomic import describe_os_error
from ostaf.library.attribute_meta import AttributeMeta
from ostaf.limits import MAX_IMAGES
from ostaf.method.words import check_distinct_words
from ostaf.render.naming import DEFAULT_TEMPLATE, NameTemplate, check_names, slug
from ostaf.requests import (
    SAMPLERS,
    AppliedAttribute,
    ModelChoice,
    RenderSettings,
    parse_number,
)

SHEET_AXES = ("prompt", "seed", "attribute", "lambda")
MAX_CELLS = MAX_IMAGES
MAX_PROMPT = 2_000


@dataclass(frozen=True)
class AttributeChoice:
    """One attribute of a combination, with its own intensities (empty: the batch's list,
    or the file's default λ when the batch gives none)."""

    path: Path
    intensities: tuple[float, ...] = ()


@dataclass
class BatchRequest:
    """A batch export: every prompt × combination × intensity × seed becomes one PNG."""

    prompts: list[str]
    seeds: list[int]
    out_dir: Path
    combinations: list[list[AttributeChoice]] = field(default_factory=lambda: [[]])
    intensities: list[float] = field(default_factory=list)
    negative_prompt: str = ""
    steps: int = RenderSettings.steps
    guidance: float | None = RenderSettings.guidance  # None: the model's own
    width: int | None = None
    height: int | None = None
    sampler: str = RenderSettings.sampler
    schedule: str = RenderSettings.schedule
    template: str = DEFAULT_TEMPLATE
    project: str = ""  # the value of {project}
    contact_sheet: bool = False
    sheet_columns: tuple[str, ...] = ("attribute", "lambda")
    overwrite: bool = False  # replace images rendered earlier with other settings

    def validate(self) -> None:
        """Raise SettingsError naming the first impossible value."""
        if not self.prompts:
            raise SettingsError("no prompts given; type one or give a file with one per line")
        for prompt in self.prompts:
            if not prompt.strip():
                raise SettingsError("one of the prompts is empty")
            if len(prompt) > MAX_PROMPT:
                raise SettingsError(f"a prompt is longer than {MAX_PROMPT} characters")
        for lam in self.intensities:
            _check_intensity(lam, "the batch")
        for combination in self.combinations:
            for choice in combination:
                for lam in choice.intensities:
                    _check_intensity(lam, choice.path.name)
        self.render_settings(self.prompts[0], []).validate()
        if self.sampler not in SAMPLERS:
            raise SettingsError(f"sampler {self.sampler!r} is unknown")
        unknown = [a for a in self.sheet_columns if a not in SHEET_AXES]
        if unknown or not self.sheet_columns or len(set(self.sheet_columns)) == len(SHEET_AXES):
            raise SettingsError(
                f"contact-sheet columns {','.join(self.sheet_columns)!r} must be one to three "
                f"of {', '.join(SHEET_AXES)}"
            )
        NameTemplate(self.template)

    def render_settings(self, prompt: str, seeds: list[int]) -> RenderSettings:
        """The single-render settings of one cell (or of a row of seeds)."""
        return RenderSettings(
            prompt=prompt,
            negative_prompt=self.negative_prompt,
            seeds=list(seeds) or list(self.seeds),
            steps=self.steps,
            guidance=self.guidance,
            width=self.width,
            height=self.height,
            sampler=self.sampler,
            schedule=self.schedule,
        )


@dataclass
class BatchJob:
    """A batch export on a base model."""

    request: BatchRequest
    model: ModelChoice = field(default_factory=ModelChoice)


def _check_intensity(lam: float, where: str) -> None:
    AppliedAttribute(Path(where), lam).validate()


@dataclass(frozen=True)
class Variant:
    """One attribute combination at one set of intensities."""

    combination: int
    applied: tuple[AppliedAttribute, ...]
    names: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def intensities(self) -> tuple[float, ...]:
        return tuple(a.intensity for a in self.applied)

    def label(self, axis: str) -> str:
        if axis == "attribute":
            return " + ".join(self.names) or "base model"
        if not self.applied:
            return ""
        return "lambda " + ", ".join(f"{lam:g}" for lam in self.intensities)


@dataclass(frozen=True)
class Cell:
    """One image of the grid."""

    index: int
    prompt_index: int
    prompt: str
    seed: int
    variant: Variant
    file_name: str

    def axis_key(self, axis: str) -> object:
        if axis == "prompt":
            return self.prompt_index
        if axis == "seed":
            return self.seed
        if axis == "attribute":
            return self.variant.combination
        return self.variant.intensities

    def axis_label(self, axis: str) -> str:
        if axis == "prompt":
            return self.prompt
        if axis == "seed":
            return f"seed {self.seed}"
        return self.variant.label(axis)

    def describe(self) -> str:
        parts = [f"prompt {self.prompt_index + 1}", f"seed {self.seed}"]
        if self.variant.applied:
            parts.append(self.variant.label("attribute"))
            parts.append(self.variant.label("lambda"))
        return ", ".join(parts)


@dataclass
class BatchPlan:
    """The cells of a batch with their file names, checked to be safe and distinct."""

    request: BatchRequest
    cells: list[Cell]
    sheet_name: str | None
    out_dir_existed: bool = False  # when planned; such a folder is never made again

    def shard(self, index: int, count: int) -> list[Cell]:
        """The cells process `index` of `count` renders: every cell exactly once overall."""
        return [c for c in self.cells if c.index % count == index]

    def make_output_folder(self) -> None:
        """Create the output folder, unless it existed when the batch was planned and is gone
        now (its project deleted or moved meanwhile): then StorageError, and no folder is
        made again (the images are written into this folder only, never recreating it)."""
        out = self.request.out_dir
        if out.is_dir():
            return
        if self.out_dir_existed:
            raise StorageError(
                f"the output folder {out} was deleted or moved after the batch started (its "
                "project deleted?); nothing was written, and no folder was made again"
            )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the output folder {out}: {describe_os_error(exc)}"
            ) from exc


def plan_batch(
    request: BatchRequest, metas: Mapping[Path, AttributeMeta], max_path: int | None = None
) -> BatchPlan:
    """Expand the grid and name every file; refuse unsafe or colliding names up front."""
    request.validate()
    template = NameTemplate(request.template)
    variants = _variants(request, metas)
    count = len(request.prompts) * len(variants) * len(request.seeds)
    if count > MAX_CELLS:
        raise SettingsError(
            f"the batch would render {count} images (more than {MAX_CELLS}); "
            "use fewer prompts, seeds or intensities"
        )
    width = max(4, len(str(count - 1)))
    cells: list[Cell] = []
    grid = itertools.product(enumerate(request.prompts), variants, request.seeds)
    for index, ((prompt_index, prompt), variant, seed) in enumerate(grid):
        values = {
            "project": request.project or "ostaf",
            "attribute": "+".join(variant.names) or "base",
            "kind": "+".join(variant.kinds) or "base",
            "prompt": prompt,
            "seed": str(seed),
            "lambda": "+".join(f"{lam:g}" for lam in variant.intensities) or "0",
            "index": f"{index:0{width}d}",
            "sampler": request.sampler,
        }
        cells.append(Cell(index, prompt_index, prompt, seed, variant, template.fill(values)))
    sheet_name = None
    if request.contact_sheet:
        sheet_name = (
            f"{slug(request.project, 32)}_contact-sheet.png"
            if request.project
            else ("contact-sheet.png")
        )
    named = [(c.file_name, c.describe()) for c in cells]
    if sheet_name:
        named.append((sheet_name, "the contact sheet"))
    check_names(request.out_dir, named, max_path)
    return BatchPlan(request, cells, sheet_name, request.out_dir.is_dir())


def _variants(request: BatchRequest, metas: Mapping[Path, AttributeMeta]) -> list[Variant]:
    variants: list[Variant] = []
    for number, combination in enumerate(request.combinations):
        lists = []
        for choice in combination:
            meta = metas[choice.path]
            values = choice.intensities or tuple(request.intensities) or (meta.default_lambda,)
            lists.append(tuple(dict.fromkeys(float(v) for v in values)))
        names = tuple(metas[c.path].name for c in combination)
        kinds = tuple(str(metas[c.path].kind) for c in combination)
        for lams in itertools.product(*lists):
            # Refused here, before a model loads, as rendering would refuse the cell.
            check_distinct_words(
                [(metas[c.path], lam) for c, lam in zip(combination, lams, strict=True)]
            )
            applied = tuple(
                AppliedAttribute(c.path, lam) for c, lam in zip(combination, lams, strict=True)
            )
            variants.append(Variant(number, applied, names, kinds))
    return variants


def parse_intensities(text: str, option: str = "--intensity") -> tuple[float, ...]:
    """'0.5,1,1.5' → (0.5, 1.0, 1.5); each must lie in 0..2. `option` is the flag the
    messages' example names."""
    values: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = parse_number(part, "intensity")
        except SettingsError as exc:
            raise SettingsError(f"{exc}; use e.g. {option} 0.5,1,1.5") from exc
        if not 0 <= value <= 2:
            raise SettingsError(f"intensity {part} must be in 0..2")
        values.append(value)
    if not values:
        raise SettingsError(f"no intensities given; use e.g. {option} 0.5,1,1.5")
    return tuple(values)


MAX_PROMPT_FILE = 4 * MiB  # some 40,000 prompts: more than any batch renders


def read_prompts(path: Path) -> list[str]:
    """Prompts from a text file, one per line (blank lines and lines starting '#' skipped);
    only a regular file of at most MAX_PROMPT_FILE bytes is read."""
    try:
        text = read_regular_text(path, MAX_PROMPT_FILE, encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise SettingsError(f"prompt file {path} does not exist; check the path") from exc
    except UnreadableFileError as exc:
        raise SettingsError(f"prompt file {path} {exc}; give a text file of prompts") from exc
    prompts = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    if not prompts:
        raise SettingsError(f"prompt file {path} holds no prompts (one per line)")
    return prompts


def combinations_of(choices: Sequence[AttributeChoice], mode: str) -> list[list[AttributeChoice]]:
    """Attribute combinations: all `together`, `each` alone, or every non-empty subset."""
    if not choices:
        return [[]]
    if mode == "together":
        return [list(choices)]
    if mode == "each":
        return [[c] for c in choices]
    if mode == "subsets":
        if len(choices) > 6:
            raise SettingsError("'subsets' takes at most 6 attributes (63 combinations)")
        return [
            list(subset)
            for size in range(1, len(choices) + 1)
            for subset in itertools.combinations(choices, size)
        ]
    raise SettingsError(f"combination mode {mode!r} is unknown; use together, each or subsets")
