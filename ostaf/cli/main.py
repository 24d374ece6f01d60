"""`python -m ostaf`: the headless command line over the same service the GUI uses.

Exit codes: 0 done; 2 bad input or settings (one line on stderr); 130 cancelled (Ctrl-C
stops within one step and leaves no partial file). Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ostaf.cli.numbers import crop_box, number, whole
from ostaf.cli.options import (
    add_guidance_argument,
    add_model_arguments,
    add_schedule_argument,
    model_choice,
    reference_crop,
)
from ostaf.cli.terminal import err, out, out_json, out_lines, printable, use_safe_streams
from ostaf.decompose_request import JOINT_TEMPLATE
from ostaf.errors import Cancelled, OstafError, SettingsError
from ostaf.method.regions import DEFAULT_TOKEN, AttributeKind, suggested_caption
from ostaf.method.words import CLIP_CANDIDATES, attribute_word, check_word
from ostaf.progress import CancelToken, Progress, ProgressCallback
from ostaf.requests import (
    SAMPLERS,
    AppliedAttribute,
    RenderJob,
    RenderSettings,
    TuneJob,
    TuningSettings,
    parse_number,
    parse_seeds,
    parse_size,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ostaf",
        description="Learn an attribute from one image and apply it to Stable Diffusion prompts.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tune = sub.add_parser("tune", help="learn an attribute from one reference image")
    tune.add_argument("image", type=Path, help="the reference image")
    tune.add_argument(
        "--attribute",
        required=True,
        choices=[*(k.value for k in AttributeKind), "all"],
        help="what to learn; all: shape, appearance and style in one run, three files",
    )
    tune.add_argument(
        "--out",  # text: a trailing separator says "a folder" for --attribute all
        help="the .safetensors file to write; with --attribute all a folder (shape/appearance/"
        "style.safetensors in it) or a name prefix (PREFIX-shape.safetensors …); may be left "
        "out with --project",
    )
    tune.add_argument(
        "--project",
        help="also save the result into this project's library (new words: none of its "
        "attributes' words)",
    )
    tune.add_argument(
        "--passes",
        choices=["one", "three"],
        default="one",
        help="with --attribute all: one loop for the three (default) or three ordinary runs",
    )
    tune.add_argument("--class-word", default="", help="what the subject is, e.g. 'cat'")
    tune.add_argument(
        "--caption",
        default="",
        metavar="TEXT",
        help="the reference described with {token} where the attribute's words would be, "
        "e.g. for shape 'a red striped {token}, flat style, on a white background' "
        "(default: the kind's template, e.g. '"
        + suggested_caption(AttributeKind.SHAPE)
        + "'): tuning then learns only the attribute, not the rest of the picture; with "
        "--attribute all {shape}, {appearance} and {style}, e.g. 'a {appearance} {shape}, "
        "{style} style, on a white background' (default on the demo model: what its world "
        "reads in the picture; elsewhere '" + JOINT_TEMPLATE + "')",
    )
    tune.add_argument(
        "--word",
        help="the word that names the attribute in prompts, one token of the model's "
        f"tokenizer (default: {DEFAULT_TOKEN}; with --project one none of its attributes has); "
        "give each attribute you combine its own, e.g. "
        + ", ".join(CLIP_CANDIDATES[:3])
        + " (`library word` changes it later); with --attribute all three, for shape, "
        "appearance and style, e.g. "
        + ",".join(CLIP_CANDIDATES[:3])
        + " (default: three free ones)",
    )
    tune.add_argument("--mask", type=Path, help="white = the region that drives tuning")
    tune.add_argument(
        "--crop",
        type=crop_box,
        metavar="L,T,R,B|mask",
        help="tune on this part of the image (pixels; the centre square of it is used), or "
        "'mask': a square around the subject painted in --mask. A subject that fills more of "
        "the picture carries over further (BENCHMARKS.md)",
    )
    tune.add_argument(
        "--steps", type=whole, help="default: the kind's Balanced steps (KIND_TUNING)"
    )
    tune.add_argument("--seed", type=whole, default=0)
    tune.add_argument(
        "--learning-rate", type=number, help="default: the kind's own rate (KIND_TUNING)"
    )
    tune.add_argument("--rank", type=whole, default=TuningSettings.rank)
    tune.add_argument(
        "--prior",
        type=number,
        metavar="W",
        help="weight of prior preservation: keep what the model draws for the description "
        "without the placeholder, so that the attribute leaves the prompt's other words alone "
        "(0: off; default: the kind's own, KIND_TUNING)",
    )
    tune.add_argument(
        "--embedding-rate",
        type=number,
        metavar="R",
        help="learning rate of the placeholder word's embedding, learned with the offsets so "
        "that the word stops meaning what the model knew (0: off; default: the kind's own, "
        "KIND_TUNING)",
    )
    tune.add_argument("--name", default="", help="a name for the attribute")
    tune.add_argument(
        "--size",
        type=whole,
        default=0,
        metavar="PX",
        help="square tuning resolution in px (default: the model's own, e.g. 512 for SD 1.5, "
        "1024 for SDXL); `python -m ostaf sizes` lists what a model accepts",
    )
    tune.add_argument(
        "--memory-saving",
        action="store_true",
        help="recompute activations instead of keeping them: slower, fits smaller GPUs",
    )
    tune.add_argument(
        "--restart",
        action="store_true",
        help="ignore the state an interrupted run of this command left in FILE.resume",
    )
    tune.add_argument(
        "--checkpoint-interval",
        type=number,
        default=10.0,
        metavar="SECONDS",
        help="how often the resumable state is saved (default 10)",
    )
    add_model_arguments(tune)

    render = sub.add_parser("render", help="render a prompt with attributes applied")
    render.add_argument("--prompt", required=True)
    render.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    render.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="FILE[:LAMBDA]",
        help="an attribute file and its intensity 0..2 (default: the file's own); repeatable",
    )
    render.add_argument("--negative", default="", help="negative prompt")
    render.add_argument("--seeds", default="0", help="e.g. 1,2,3 or 10-19")
    render.add_argument("--steps", type=whole, default=RenderSettings.steps)
    add_guidance_argument(render)
    render.add_argument(
        "--size", help="WxH (default: the model's resolution; `python -m ostaf sizes` lists some)"
    )
    render.add_argument("--sampler", choices=SAMPLERS, default=RenderSettings.sampler)
    add_schedule_argument(render)
    add_model_arguments(render)

    sizes = sub.add_parser("sizes", help="a model's family and the sizes it renders and tunes at")
    sizes.add_argument(
        "--model", default=None, help="'demo', 'demo-xl' or a model path (default: Settings)"
    )

    info = sub.add_parser("info", help="show an attribute file's metadata or a PNG's parameters")
    info.add_argument("file", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON")

    demo_model = sub.add_parser(
        "demo-model", help="write an embedded demo model as a diffusers folder"
    )
    demo_model.add_argument("--out", required=True, type=Path)
    demo_model.add_argument(
        "--model", default="demo", help="'demo' (default, SD 1.x-shaped) or 'demo-xl' (SDXL-shaped)"
    )

    demo = sub.add_parser("demo", help="tune and render on the demo model, end to end")
    demo.add_argument("--out", type=Path, default=None, help="folder for the results")
    demo.add_argument("--steps", type=whole, default=TuningSettings.steps)

    from ostaf.cli.batch import add_batch_command
    from ostaf.cli.library import add_library_commands

    add_library_commands(sub)
    add_batch_command(sub)
    return parser


def parse_applied(text: str) -> AppliedAttribute:
    """'FILE' or 'FILE:LAMBDA' (a Windows drive colon is left alone)."""
    path_text, sep, tail = text.rpartition(":")
    if sep:
        try:
            return AppliedAttribute(Path(path_text), parse_number(tail, "intensity"))
        except SettingsError:
            pass
    from ostaf.library.attribute_meta import read_meta

    path = Path(text)
    return AppliedAttribute(path, read_meta(path).default_lambda)


@contextmanager
def cancel_on_interrupt() -> Iterator[CancelToken]:
    """First Ctrl-C asks the running job to stop at its next step; a second one aborts."""
    token = CancelToken()

    def handler(_signum: int, _frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        err("stopping after this step… (Ctrl-C again to abort)")
        token.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


class ProgressBar:
    """A stderr progress bar (tqdm) fed by Progress reports, one bar per stage."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._stage = ""

    def __call__(self, report: Progress) -> None:
        from tqdm import tqdm

        if report.stage != self._stage or (self._bar is not None and report.step < self._bar.n):
            self.close()
            self._stage = report.stage
            self._bar = tqdm(total=report.total, desc=report.stage, file=sys.stderr, leave=False)
        if report.note:
            err(f"note: {report.note}")
        elif report.stage == "loading" and report.message:  # e.g. hashing a checkpoint
            self._bar.set_postfix_str(printable(report.message), refresh=False)
        if report.loss is not None:
            self._bar.set_postfix(loss=f"{report.loss:.4f}")
        self._bar.update(report.step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_tune(args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken) -> int:
    if args.attribute == "all":
        from ostaf.cli.learn_all import run_learn_all

        return run_learn_all(args, progress, cancel)
    if args.passes != "one":
        raise SettingsError("--passes is for --attribute all")
    args.out = Path(args.out) if args.out else None
    if args.project is not None:
        return run_tune_into_project(args, progress, cancel)
    if args.out is None:
        raise SettingsError("give --out, the .safetensors file to write (or --project)")
    return run_tune_one(args, progress, cancel, check_word(args.word or DEFAULT_TOKEN))


def run_tune_into_project(
    args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken
) -> int:
    """Tune one attribute with a word no attribute of the project has (unless --word says)
    and import it into the project's library (from --out, or from its staging folder)."""
    from ostaf.cli.library import open_project
    from ostaf.library.staging import staging_path
    from ostaf.models.demo_model import is_demo_source

    with open_project(args.project) as project:
        word = check_word(args.word or project.free_word(is_demo_source(model_choice(args).source)))
        staged = args.out is None
        if staged:
            args.out = staging_path(project)
        try:
            run_tune_one(args, progress, cancel, word, quiet=True)
            owner = project.words().get(word)
            if owner is not None:
                err(f"note: '{owner}' also uses the word '{word}'")
            entry = project.import_attribute(args.out).entry
        finally:
            if staged:
                args.out.unlink(missing_ok=True)
    out(f"{word}  {entry.path}")
    return 0


def run_tune_one(
    args: argparse.Namespace,
    progress: ProgressCallback,
    cancel: CancelToken,
    word: str,
    quiet: bool = False,
) -> int:
    """Tune one attribute into --out (printing its path unless `quiet`)."""
    from ostaf.library.atomic import check_writable
    from ostaf.library.output_lock import hold_output
    from ostaf.method.tuning_checkpoint import discard, read_sidecar, sidecar
    from ostaf.service import OstafService
    from ostaf.settings import load_settings

    chosen = {
        name: value
        for name, value in (
            ("steps", args.steps),
            ("learning_rate", args.learning_rate),
            ("prior", args.prior),
            ("embedding_rate", args.embedding_rate),
        )
        if value is not None
    }
    settings = TuningSettings.for_kind(
        AttributeKind(args.attribute),
        **chosen,
        rank=args.rank,
        caption=args.caption,
        token=word,
        seed=args.seed,
        class_word=args.class_word,
        mask=args.mask,
        crop=reference_crop(args),
        memory_saving=args.memory_saving or load_settings().memory_saving,
        size=args.size,
    )
    checkpoint = args.out.with_name(args.out.name + ".resume")
    job = TuneJob(
        args.image,
        settings,
        args.out,
        args.name,
        model_choice(args),
        checkpoint=checkpoint,
        checkpoint_interval_s=args.checkpoint_interval,
    )
    job.validate()
    check_writable(args.out, checkpoint, sidecar(checkpoint))  # before anything is touched
    with hold_output(args.out):  # another run into this file: refused before its state is read
        if args.restart:
            discard(checkpoint)
        elif (previous := read_sidecar(checkpoint)) is not None:
            err(
                f"note: an interrupted run left its state at step {previous.get('step')}; it "
                "resumes if the settings match (--restart to start over)"
            )
        outcome = OstafService().tune(job, progress, cancel)  # its notes were shown as they came
    if not quiet:
        out(outcome.path)
    return 0


def run_render(args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken) -> int:
    from ostaf.service import OstafService

    width, height = parse_size(args.size) if args.size else (None, None)
    settings = RenderSettings(
        prompt=args.prompt,
        negative_prompt=args.negative,
        seeds=parse_seeds(args.seeds),
        steps=args.steps,
        guidance=args.guidance,
        width=width,
        height=height,
        sampler=args.sampler,
        schedule=args.schedule,
        attributes=[parse_applied(a) for a in args.attribute],
    )
    settings.validate()
    outcome = OstafService().render(
        RenderJob(settings, args.out, model_choice(args)), progress, cancel
    )
    for warning in dict.fromkeys(w for item in outcome.images for w in item.warnings):
        err(f"warning: {warning}")
    for path in outcome.paths:
        out(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.suffix.lower() == ".png":
        from ostaf.interop.pngmeta import parse_a1111, read_png

        found = read_png(path)
        parameters, record = found.parameters, found.data
        if parameters is None and record is None:
            why = f" ({found.problem})" if found.problem else ""
            raise SettingsError(f"{path} carries no generation parameters{why}")
        if found.problem:
            err(f"warning: {found.problem}")
        if args.json:
            parsed = parse_a1111(parameters) if parameters else None
            out_json({"parameters": parameters, "parsed": parsed, "ostaf": record})
        elif parameters is not None:
            out(parameters, keep_newlines=True)  # its lines are the format; each is escaped
        else:
            out_json(record)
        return 0
    from ostaf.library.attribute_meta import read_meta

    meta = read_meta(path)
    data = json.loads(meta.to_json())
    if args.json:
        out_json(data)
        return 0
    data["reference"].pop("thumbnail", None)
    lines = [
        f"name:          {meta.name}",
        f"kind:          {meta.kind} ({meta.kind.summary})",
        f"word:          {attribute_word(meta)}",
        f"region:        {', '.join(meta.region.blocks)} "
        f"({len(meta.targets)} layers, rank {meta.rank})",
        f"base model:    {meta.base_model.name} (fingerprint {meta.base_model.fingerprint})",
        f"reference:     {meta.reference.file_name} {meta.reference.width}x{meta.reference.height}",
        f"default λ:     {meta.default_lambda:g}",
        f"tags:          {', '.join(meta.tags) or '-'}",
        f"notes:         {meta.notes or '-'}",
        f"created:       {meta.created_at}",
        "tuning:        " + ", ".join(f"{k}={v}" for k, v in sorted(meta.tuning.items())),
    ]
    out_lines(lines)
    return 0


def run_sizes(args: argparse.Namespace) -> int:
    """The model's family, prediction, render sizes (the GUI's choices) and tuning sizes,
    read from its configs without loading it."""
    from ostaf.models.model_check import model_sizes
    from ostaf.settings import load_settings

    sizes = model_sizes(args.model or load_settings().model_source)
    out(f"{sizes.family.label}, native {sizes.native}x{sizes.native} px, {sizes.prediction.label}")
    out("render sizes (--size WxH):")
    for label, width, height in sizes.render_sizes():
        name = " ".join(word for word in label.split() if "×" not in word)
        out(f"  {width}x{height}  {name}")
    out("tuning sizes (tune --size PX): " + ", ".join(map(str, sizes.tuning_sizes())))
    return 0


def run_demo_model(args: argparse.Namespace) -> int:
    from ostaf.models.demo_model import embedded_models, write_demo_model

    if args.model not in embedded_models():
        names = ", ".join(f"'{name}'" for name in embedded_models())
        raise SettingsError(f"there is no embedded demo model '{args.model}'; choose {names}")
    folder: Path = args.out
    if folder.exists() and not folder.is_dir():
        raise SettingsError(f"{folder} is a file; give the name of a new folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise SettingsError(f"{folder} is not empty; choose a new folder")
    out(write_demo_model(folder, args.model))
    return 0


def run_demo(args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken) -> int:
    """Tune an appearance attribute from a generated reference and render it at λ 0, 1, 2."""
    from ostaf import paths
    from ostaf.service import OstafService
    from ostaf.world.demo_reference import DEMO_PROMPT, demo_reference

    folder = args.out or paths.data_dir() / "demo-output"
    service = OstafService()
    reference = demo_reference(folder / "reference.png")
    err(f"reference: {reference}")
    tuned = service.tune(
        TuneJob(
            reference,
            TuningSettings.for_kind(AttributeKind.APPEARANCE, steps=args.steps),
            folder / "appearance.safetensors",
            "demo appearance",
        ),
        progress,
        cancel,
    )
    out(tuned.path)
    for lam in (0.0, 1.0, 2.0):
        settings = RenderSettings(
            prompt=DEMO_PROMPT,
            seeds=[1],
            attributes=[AppliedAttribute(tuned.path, lam)],
        )
        for path in service.render(
            RenderJob(settings, folder / f"lambda-{lam:g}"), progress, cancel
        ).paths:
            out(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    use_safe_streams()  # before argparse, whose help holds λ too
    args = build_parser().parse_args(argv)
    bar = ProgressBar()
    try:
        with cancel_on_interrupt() as cancel:
            handler = getattr(args, "handler", None)  # library, export-lora, batch
            if handler is not None:
                return int(handler(args, bar, cancel))
            if args.command == "tune":
                return run_tune(args, bar, cancel)
            if args.command == "render":
                return run_render(args, bar, cancel)
            if args.command == "info":
                return run_info(args)
            if args.command == "sizes":
                return run_sizes(args)
            if args.command == "demo-model":
                return run_demo_model(args)
            return run_demo(args, bar, cancel)
    except Cancelled:
        bar.close()
        err("cancelled; nothing was written")
        return 130
    except KeyboardInterrupt:
        bar.close()
        err("aborted")
        return 130
    except OstafError as exc:
        bar.close()
        err(f"error: {exc}")
        return exc.exit_code
    finally:
        bar.close()
