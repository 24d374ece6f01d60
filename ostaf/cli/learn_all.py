"""`python -m ostaf tune IMAGE --attribute all`: learn shape, appearance and style from one
reference in one run, three files with a word each (into a project's library with --project)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from ostaf.cli.options import model_choice, reference_crop
from ostaf.cli.terminal import err, out
from ostaf.decompose_request import ALL_KINDS, DecomposeJob, DecomposeSettings
from ostaf.errors import SettingsError
from ostaf.images import Box, load_reference
from ostaf.library.attribute_meta import SUFFIX
from ostaf.method.regions import AttributeKind
from ostaf.method.words import check_word, choose_word
from ostaf.models.demo_model import is_demo_source
from ostaf.progress import CancelToken, ProgressCallback
from ostaf.requests import ModelChoice

RESUME_NAME = "all-three.resume"


def output_paths(out: str | Path) -> dict[AttributeKind, Path]:
    """Where the three files go: `out`/<kind>.safetensors when `out` is a folder (or ends in a
    separator), else `out`-<kind>.safetensors (a trailing .safetensors is dropped)."""
    path = Path(out)
    if _is_folder(out):
        return {kind: path / f"{kind}{SUFFIX}" for kind in ALL_KINDS}
    stem = path.name.removesuffix(SUFFIX)
    if not stem:
        raise SettingsError(f"--out {out} names no file; give a folder or a name such as ref")
    return {kind: path.with_name(f"{stem}-{kind}{SUFFIX}") for kind in ALL_KINDS}


def resume_path(out: str | Path) -> Path:
    """The resumable state of the one pass, beside the files."""
    path = Path(out)
    if _is_folder(out):
        return path / RESUME_NAME
    return path.with_name(path.name.removesuffix(SUFFIX) + ".resume")


def _is_folder(out: str | Path) -> bool:
    """`out` names a folder: one that is there, or a name ending in a separator."""
    return Path(out).is_dir() or str(out).endswith(("/", "\\"))


def chosen_words(text: str | None, taken: list[str], demo: bool) -> dict[AttributeKind, str]:
    """'W1,W2,W3' (shape, appearance, style) or, when not given, three words none of `taken`
    is (the project's attributes' words) and not each other."""
    if text:
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != len(ALL_KINDS):
            raise SettingsError(
                f"--word {text!r} must give three words, for shape, appearance and style, "
                "e.g. --word ohwx,nmwx,nlwx"
            )
        return {kind: check_word(word) for kind, word in zip(ALL_KINDS, parts, strict=True)}
    words: dict[AttributeKind, str] = {}
    for kind in ALL_KINDS:
        words[kind] = choose_word([*taken, *words.values()], demo)
    return words


def describe_demo_reference(
    image: Path, choice: ModelChoice, size: int, crop: Box | None = None
) -> tuple[str, dict[AttributeKind, str]]:
    """On the demo model: the description the world's oracle reads in the picture, with the
    three placeholders, and each kind's own words; ("", {}) when it cannot read it."""
    from ostaf.models.model_check import model_sizes
    from ostaf.world.description import describe_all, read_words

    px = model_sizes(choice.source).tuning_size(size)
    words = read_words(load_reference(image, px, crop).image)
    return describe_all(words) if words is not None else ("", {})


def run_learn_all(args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken) -> int:
    """Learn the three, write (or import) them and print each one's kind, word and file."""
    from ostaf.cli.library import open_project
    from ostaf.library.atomic import check_writable
    from ostaf.library.output_lock import hold_output
    from ostaf.library.staging import staging_path
    from ostaf.method.tuning_checkpoint import discard, read_sidecar, sidecar
    from ostaf.service import OstafService
    from ostaf.settings import load_settings

    refused = [
        flag
        for flag, value in (
            ("--learning-rate", args.learning_rate),
            ("--prior", args.prior),
            ("--embedding-rate", args.embedding_rate),
        )
        if value is not None
    ]
    if refused:
        raise SettingsError(
            f"{', '.join(refused)}: with --attribute all each kind tunes with its own "
            "values (KIND_TUNING); tune a kind alone to change them"
        )
    if args.out is None and args.project is None:
        raise SettingsError("give --out (a folder or a name prefix) or --project")
    choice = model_choice(args)
    demo = is_demo_source(choice.source)
    with ExitStack() as stack:
        project = stack.enter_context(open_project(args.project)) if args.project else None
        words = chosen_words(args.word, list(project.words()) if project else [], demo)
        crop = reference_crop(args)
        caption, described = args.caption, dict[AttributeKind, str]()
        if not caption.strip() and demo:
            caption, described = describe_demo_reference(args.image, choice, args.size, crop)
            if caption:
                read = ", ".join(f"{kind} '{described[kind]}'" for kind in ALL_KINDS)
                err(f"note: the demo world reads the picture as '{caption}' with {read}")
        shared = {
            "seed": args.seed,
            "rank": args.rank,
            "mask": args.mask,
            "crop": crop,
            "size": args.size,
        }
        if args.steps is not None:
            shared["steps"] = args.steps
        settings = DecomposeSettings.create(
            words,
            caption,
            described,
            one_pass=args.passes == "one",
            class_word=args.class_word,
            memory_saving=args.memory_saving or load_settings().memory_saving,
            **shared,
        )
        # With --project alone the files are made in its staging folder (not resumable: the
        # app empties that folder) and imported from there.
        staged = args.out is None and project is not None
        target = staging_path(project, suffix="") if staged and project else args.out
        outs = output_paths(target)
        checkpoint = resume_path(target)
        names = {kind: f"{args.name} {kind}" for kind in ALL_KINDS} if args.name else {}
        job = DecomposeJob(
            args.image,
            settings,
            outs,
            names,
            choice,
            checkpoint=checkpoint if settings.one_pass and not staged else None,
            checkpoint_interval_s=args.checkpoint_interval,
        )
        job.validate()
        for path in outs.values():  # before anything is touched
            check_writable(path, checkpoint, sidecar(checkpoint))
        with ExitStack() as holds:
            for path in outs.values():
                holds.enter_context(hold_output(path))
            if args.restart or job.checkpoint is None:
                discard(checkpoint)
            elif (previous := read_sidecar(checkpoint)) is not None:
                err(
                    f"note: an interrupted run left its state at step {previous.get('step')}; "
                    "it resumes if the settings match (--restart to start over)"
                )
            if staged:
                stack.callback(_remove, list(outs.values()))
            outcome = OstafService().learn_all(job, progress, cancel)
        paths = outcome.paths
        if project is not None:
            owners = project.words()  # an attribute given one of the words meanwhile
            for kind in ALL_KINDS:
                if words[kind] in owners:
                    err(f"note: '{owners[words[kind]]}' also uses the word '{words[kind]}'")
            imported = project.import_attributes([paths[kind] for kind in ALL_KINDS])
            paths = {kind: i.entry.path for kind, i in zip(ALL_KINDS, imported, strict=True)}
    for kind in ALL_KINDS:
        out(f"{kind!s:<10}  {words[kind]:<6}  {paths[kind]}")
    return 0


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
