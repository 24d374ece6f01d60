"""`python -m ostaf library …` and `python -m ostaf export-lora …`: the attribute library of a
project and LoRA export, on the command line."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ostaf.cli.numbers import number
from ostaf.cli.options import add_model_arguments, model_choice
from ostaf.cli.terminal import err, out, out_json, out_lines
from ostaf.errors import SettingsError
from ostaf.interop.lora_formats import DEFAULT_FORMAT, FORMAT_USE, FORMATS
from ostaf.library.atomic import atomic_write_bytes
from ostaf.library.projects import (
    AttributeEntry,
    Project,
    ProjectStore,
    filter_attributes,
    thumbnail_png,
)
from ostaf.method.regions import AttributeKind
from ostaf.method.words import attribute_word
from ostaf.progress import CancelToken, ProgressCallback


def add_library_commands(sub: argparse._SubParsersAction) -> None:
    """Register `library` (with its actions) and `export-lora`."""
    library = sub.add_parser("library", help="keep, share and reuse the attributes of a project")
    actions = library.add_subparsers(dest="library_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", required=True, help="the project's name or folder name")

    listing = actions.add_parser("list", parents=[common], help="list attributes, filtered")
    listing.add_argument("--search", default="", help="text in the name, notes or tags")
    listing.add_argument("--tag", action="append", default=[], help="must carry this tag")
    listing.add_argument("--kind", choices=[k.value for k in AttributeKind])
    listing.add_argument("--trash", action="store_true", help="list the trash instead")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", parents=[common], help="an attribute's metadata")
    show.add_argument("attribute", help="id, id prefix or name")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--thumbnail", type=Path, help="also write the reference thumbnail PNG")
    show.set_defaults(handler=run_show)

    imp = actions.add_parser(
        "import", parents=[common], help="copy attribute files (or another project's) in"
    )
    imp.add_argument("sources", nargs="+", help="attribute files (or ids with --from-project)")
    imp.add_argument("--from-project", help="take the attributes from this project")
    imp.add_argument("--create", action="store_true", help="create the project if needed")
    imp.set_defaults(handler=run_import)

    export = actions.add_parser("export", parents=[common], help="copy an attribute file out")
    export.add_argument("attribute", help="id, id prefix or name")
    export.add_argument("--out", required=True, type=Path, help="a folder or a .safetensors")
    export.add_argument("--force", action="store_true", help="replace an existing file")
    export.set_defaults(handler=run_export)

    rename = actions.add_parser("rename", parents=[common], help="give an attribute a new name")
    rename.add_argument("attribute", help="id, id prefix or name")
    rename.add_argument("name")
    rename.set_defaults(handler=run_edit)

    word = actions.add_parser(
        "word",
        parents=[common],
        help="give an attribute another word for prompts (loads the model: its embeddings)",
    )
    word.add_argument("attribute", help="id, id prefix or name")
    word.add_argument("word", help="one word no other attribute of the project has, e.g. ohwx")
    add_model_arguments(word)
    word.set_defaults(handler=run_word)

    tag = actions.add_parser("tag", parents=[common], help="add, remove or set tags")
    tag.add_argument("attribute", help="id, id prefix or name")
    tag.add_argument("--add", default="", help="comma-separated tags to add")
    tag.add_argument("--remove", default="", help="comma-separated tags to remove")
    tag.add_argument("--set", dest="set_tags", help="replace all tags (comma-separated)")
    tag.set_defaults(handler=run_tag)

    edit = actions.add_parser("edit", parents=[common], help="change name, notes or default λ")
    edit.add_argument("attribute", help="id, id prefix or name")
    edit.add_argument("--name")
    edit.add_argument("--notes")
    edit.add_argument("--lambda", dest="default_lambda", type=number, help="default λ, 0..2")
    edit.set_defaults(handler=run_edit)

    delete = actions.add_parser("delete", parents=[common], help="move attributes to the trash")
    delete.add_argument("attributes", nargs="+", help="ids, id prefixes or names")
    delete.set_defaults(handler=run_delete)

    restore = actions.add_parser("restore", parents=[common], help="bring attributes back")
    restore.add_argument("attributes", nargs="+", help="ids, id prefixes or names in the trash")
    restore.set_defaults(handler=run_restore)

    purge = actions.add_parser(
        "purge", parents=[common], help="delete attributes from the trash for good"
    )
    purge.add_argument("attributes", nargs="+", help="ids, id prefixes or names in the trash")
    purge.set_defaults(handler=run_purge)

    empty = actions.add_parser(
        "empty-trash", parents=[common], help="delete everything in the trash for good"
    )
    empty.set_defaults(handler=run_empty_trash)

    lora = sub.add_parser("export-lora", help="write an attribute as a LoRA for other tools")
    lora.add_argument("file", help="an attribute file (or, with --project, an id or name)")
    lora.add_argument(
        "--format",
        choices=FORMATS,
        default=DEFAULT_FORMAT,
        help="; ".join(f"{name}: {use}" for name, use in FORMAT_USE.items())
        + f" (default: {DEFAULT_FORMAT})",
    )
    lora.add_argument("--out", required=True, type=Path, help="the .safetensors to write")
    lora.add_argument(
        "--lambda",
        dest="intensity",
        type=number,
        help="λ baked in, so that weight 1 in the other tool = this λ (default: the file's)",
    )
    lora.add_argument("--project", help="look the attribute up in this project's library")
    lora.add_argument("--force", action="store_true", help="replace an existing file")
    lora.set_defaults(handler=run_export_lora)


COMMAND_LOCK_WAIT_S = 60.0  # another command's edit takes seconds; the app's lock is refused


@contextmanager
def open_project(name: str, create: bool = False) -> Iterator[Project]:
    """The named project. Each write takes its lock, waiting for another command's edit to
    finish (an app holding it is named at once); the lock is let go when the command ends."""
    store = ProjectStore()
    if create:  # looked up and created under the store's lock: two at once make one project
        project, _ = store.find_or_create(name)
        project.release()  # taken again, as a command's, by the write that follows
    else:
        project = store.find(name)
    project.holder, project.lock_wait_s = "command", COMMAND_LOCK_WAIT_S
    try:
        yield project
    finally:
        project.release()


def _line(entry: AttributeEntry) -> str:
    meta = entry.meta
    tags = f"  [{', '.join(meta.tags)}]" if meta.tags else ""
    word = attribute_word(meta)
    return (
        f"{entry.id}  {meta.kind!s:<10}  {word:<6}  λ {meta.default_lambda:<4g}  {meta.name}{tags}"
    )


def _summary(entry: AttributeEntry) -> dict[str, object]:
    meta = entry.meta
    return {
        "id": entry.id,
        "path": str(entry.path),
        "name": meta.name,
        "kind": str(meta.kind),
        "word": attribute_word(meta),
        "default_lambda": meta.default_lambda,
        "tags": meta.tags,
        "notes": meta.notes,
        "rank": meta.rank,
        "base_model": meta.base_model.name,
        "created_at": meta.created_at,
    }


def run_list(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        entries, problems = project.scan_trash() if args.trash else project.scan_attributes()
        for problem in problems:
            err(f"warning: skipped {problem.message}")
        entries = filter_attributes(entries, args.search, args.tag, args.kind)
    if args.json:
        out_json([_summary(e) for e in entries])
    else:
        for entry in entries:
            out(_line(entry))
    return 0


def run_show(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        entry = project.find_attribute(args.attribute)
    if args.thumbnail is not None:
        png = thumbnail_png(entry.meta)
        if png is None:
            raise SettingsError(f"'{entry.meta.name}' carries no readable thumbnail")
        atomic_write_bytes(args.thumbnail, png)
    if args.json:
        out_json(_summary(entry))
        return 0
    meta = entry.meta
    out_lines(
        [
            f"id:            {entry.id}",
            f"name:          {meta.name}",
            f"kind:          {meta.kind} ({meta.kind.summary})",
            f"word:          {attribute_word(meta)} (write it in prompts where it goes)",
            f"default λ:     {meta.default_lambda:g}",
            f"tags:          {', '.join(meta.tags) or '-'}",
            f"notes:         {meta.notes or '-'}",
            f"rank:          {meta.rank}, {len(meta.targets)} layers",
            f"base model:    {meta.base_model.name}",
            f"reference:     {meta.reference.file_name}",
            f"created:       {meta.created_at}",
            f"file:          {entry.path}",
        ]
    )
    return 0


def run_import(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    if args.from_project:
        with open_project(args.from_project) as source:
            paths = [source.find_attribute(ref).path for ref in args.sources]
    else:
        paths = [Path(s) for s in args.sources]
    with open_project(args.project, create=args.create) as project:
        outcomes = project.import_attributes(paths)
    for outcome in outcomes:
        what = "already in the library" if outcome.duplicate else "imported"
        out(f"{what}: {_line(outcome.entry)}")
    return 0


def run_export(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        out(project.export_attribute(args.attribute, args.out, overwrite=args.force))
    return 0


def run_edit(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        entry = project.update_attribute(
            args.attribute,
            name=args.name,
            notes=getattr(args, "notes", None),
            default_lambda=getattr(args, "default_lambda", None),
        )
    out(_line(entry))
    return 0


def run_word(args: argparse.Namespace, progress: ProgressCallback, cancel: CancelToken) -> int:
    """Give an attribute another word: checked against the project first, re-based on the
    model (ostaf.method.word_rebase), then written over its file (its id stays)."""
    from ostaf.service import OstafService

    with open_project(args.project) as project:
        entry = project.find_attribute(args.attribute)
        word = project.check_new_word(entry.id, args.word)  # before a model loads
    was = attribute_word(entry.meta)
    service = OstafService()
    attribute = service.attribute(entry.path)
    renamed = service.rebase_word(entry.path, word, model_choice(args), progress, cancel)
    with open_project(args.project) as project:
        entry = project.change_word(entry.id, renamed, attribute.content_hash())
    out(_line(entry))
    err(
        f"'{entry.meta.name}' is now written {word} in prompts (was {was}); at λ 1 a prompt "
        f"with {word} renders as one with {was} did"
    )
    return 0


def run_tag(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        if args.set_tags is not None:
            entry = project.update_attribute(args.attribute, tags=args.set_tags.split(","))
        else:  # the current tags are read inside the lock, so concurrent edits all count
            entry = project.change_tags(
                args.attribute, add=args.add.split(","), remove=args.remove.split(",")
            )
    out(_line(entry))
    return 0


def run_delete(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project, project.locked():
        for ref in args.attributes:
            entry = project.find_attribute(ref)
            project.delete_attribute(entry.id)
            out(f"moved to the trash: {_line(entry)}")
    return 0


def run_restore(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project, project.locked():
        for ref in args.attributes:
            outcome = project.restore_attribute(ref)
            if outcome.already_present:
                out(f"already in the library (the trashed copy stays): {_line(outcome.entry)}")
            else:
                out(f"restored: {_line(outcome.entry)}")
    return 0


def run_purge(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project, project.locked():
        for ref in args.attributes:
            entry = project.purge_attribute(ref)
            out(f"deleted for good: {_line(entry)}")
    return 0


def run_empty_trash(args: argparse.Namespace, _p: ProgressCallback, _c: CancelToken) -> int:
    with open_project(args.project) as project:
        removed = project.empty_trash()
    out(f"deleted {len(removed)} attribute file(s) from the trash of '{project.name}' for good")
    return 0


def run_export_lora(args: argparse.Namespace, _p: ProgressCallback, cancel: CancelToken) -> int:
    from ostaf.interop.lora_export import export_lora
    from ostaf.interop.lora_formats import word_advice
    from ostaf.library.attribute_file import load_attribute

    path = Path(args.file)
    if args.project and not path.is_file():
        with open_project(args.project) as project:
            path = project.find_attribute(args.file).path
    attribute = load_attribute(path)
    done = export_lora(
        attribute, args.out, args.format, args.intensity, overwrite=args.force, cancel=cancel
    )
    err(
        f"{done.format} LoRA of '{attribute.meta.name}': {len(attribute.factors)} layers, "
        f"rank {attribute.meta.rank}, for {done.target}; "
        f"weight 1 in other tools = λ {done.intensity:g}"
    )
    out(done.path)
    err(word_advice(attribute_word(attribute.meta), done.word))
    if done.word is not None:
        out(done.word)
    return 0
