"""Image verbs: images, rmi, tag, import, and the `image` group (ls, rm, inspect, import, tag, prune).

Everything here works on the local store (engine.image.store); pull and push live in registry_cmds.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.cli import filter_flag
from engine.cli.output import human_duration, print_formatted
from engine.config import EngineConfig
from engine.errors import DockuiError, InvalidArgument, NeedsRoot

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def _handler(func):
    """Turn a PermissionError on the store's files into one clear line (exit 1, as every verb but run/create: engine.cli.error_status)."""

    def wrapper(args: argparse.Namespace, config: EngineConfig) -> int:
        try:
            return func(args, config)
        except PermissionError as exc:
            verb = " ".join(v for v in (args.verb, getattr(args, "image_verb", None)) if v)
            raise _permission_error(verb, exc) from None

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:
    """Top-level `images`, `rmi`, `tag`, `import`, and the `image` group with Docker's sub-verbs."""
    _add_images(subparsers.add_parser("images", help="List images"))
    if verb == "images":  # its own parser only: the other ~20 cost `dockui images` ~5 ms (docs/lifecycle.md)
        return
    _add_rmi(subparsers.add_parser("rmi", help="Remove one or more images"))
    _add_tag(subparsers.add_parser("tag", help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"))
    _add_import(subparsers.add_parser("import", help="Import a root filesystem tarball as an image"))

    _add_save(subparsers.add_parser("save", help="Save one or more images to a tar archive (stdout by default)"))
    _add_load(subparsers.add_parser("load", help="Load images from a tar archive or STDIN"))

    group = subparsers.add_parser("image", help="Manage images")
    inner = group.add_subparsers(dest="image_verb", metavar="COMMAND", parser_class=type(group))
    inner.required = True
    _add_images(inner.add_parser("ls", aliases=["list"], help="List images"))
    _add_rmi(inner.add_parser("rm", aliases=["remove"], help="Remove one or more images"))
    _add_tag(inner.add_parser("tag", help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"))
    _add_import(inner.add_parser("import", help="Import a root filesystem tarball as an image"))
    _add_save(inner.add_parser("save", help="Save one or more images to a tar archive (stdout by default)"))
    _add_load(inner.add_parser("load", help="Load images from a tar archive or STDIN"))
    p = inner.add_parser("inspect", help="Display detailed information on one or more images")
    p.add_argument("-f", "--format", help="format the output with a Go-like template ({{.Id}}, {{json .Config}})")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(handler=cmd_inspect)
    p = inner.add_parser("prune", help="Remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="remove all images no container uses, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], type=filter_flag, help="Provide filter values (until=, label=, label!=)")
    p.set_defaults(handler=cmd_prune)
    _add_history(inner.add_parser("history", help="Show the history of an image"))
    _add_history(subparsers.add_parser("history", help="Show the history of an image"))
    from engine.cli import registry_cmds

    registry_cmds.add_pull(inner.add_parser("pull", help="Download an image from a registry"))
    registry_cmds.add_push(inner.add_parser("push", help="Upload an image to a registry"))


def _add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-H", "--human", type=_go_bool, nargs="?", const=True, default=True,
                   help="Print sizes and dates in human readable format (default true; --human=false)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--format", help="'json', or a Go template ({{.ID}}, 'table {{.CreatedBy}}\t{{.Size}}')")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(handler=cmd_history)


def _add_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("-a", "--all", action="store_true", help="show all images (default hides intermediate images)")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("--format", help="'json' for one JSON object per line")
    p.add_argument(
        "-f", "--filter", action="append", default=[], type=filter_flag, metavar="KEY=VALUE",
        help="dangling=true|false, reference=PATTERN (glob, e.g. 'busy*:*'), label=KEY[=VALUE]",
    )
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(handler=cmd_images)


def _add_rmi(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(handler=cmd_rmi)


def _add_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(handler=cmd_tag)


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--change", action="append", default=[], help="apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE)")
    p.add_argument("-m", "--message", default="", help="commit message for the imported image")
    p.add_argument("tarball", metavar="file|-", help="root filesystem tarball (plain, gzip or zstd); - for stdin")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.set_defaults(handler=cmd_import)


def _add_save(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(handler=cmd_save)


def _add_load(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--input", help="read from a tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    p.set_defaults(handler=cmd_load)


def _store(config: EngineConfig):
    from engine.container.usage import container_uses
    from engine.image.store import ImageStore

    return ImageStore(config, containers=container_uses)


def _permission_error(what: str, exc: PermissionError) -> NeedsRoot:
    return NeedsRoot(f"{what}: permission denied on {exc.filename or 'the image store'}: run it with sudo")


# --- images ------------------------------------------------------------------------------------




def _created_epoch(created: str) -> float | None:
    from engine.util.timefmt import parse_rfc3339

    return parse_rfc3339(created)


def _created_at(created: str) -> str:
    """Docker's `CreatedAt`: `2023-05-19 16:41:53 +0000 UTC`."""
    epoch = _created_epoch(created)
    if epoch is None:
        return created
    from datetime import UTC, datetime  # on use: see "Import costs" in docs/lifecycle.md

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _created_since(created: str) -> str:
    epoch = _created_epoch(created)
    return "N/A" if epoch is None else human_duration(time.time() - epoch) + " ago"


def _rows(listed: list, repository: str | None) -> list[dict[str, Any]]:
    """One row per (image, repository tag) as `docker images` lists them (engine.api.images'
    ListedImage: its tags are those a reference filter kept); <none> for untagged images."""
    from engine.image.store import _repo_of

    rows: list[dict[str, Any]] = []
    want_repo = want_tag = None
    if repository:
        from engine.image.reference import parse_reference

        ref = parse_reference(repository)
        want_repo = ref.familiar_name
        want_tag = ref.tag if ":" in repository.rsplit("/", 1)[-1] else None
    for item in listed:
        record = item.record
        pairs: list[tuple[str, str]] = []
        for tag in item.repo_tags:
            repo = _repo_of(tag)
            pairs.append((repo, tag[len(repo) + 1 :]))
        if not pairs:
            repos_with_digest = sorted({_repo_of(d) for d in item.repo_digests})
            pairs = [(r, "<none>") for r in repos_with_digest] or [("<none>", "<none>")]
        for repo, tag in pairs:
            if want_repo is not None and (repo != want_repo or (want_tag and tag != want_tag)):
                continue
            digests = [d.split("@", 1)[1] for d in item.repo_digests if _repo_of(d) == repo]
            rows.append({"record": record, "Repository": repo, "Tag": tag, "Digest": digests[0] if digests else "<none>"})
    return rows


def _image_filter(filters: list[str]):  # -> engine.api.images.ImageFilter
    """Docker's `images --filter` (the same key ORs reference values, different keys AND), as the
    Engine API applies it (engine.api.images.list_images)."""
    from engine.api.images import IMAGE_FILTER_KEYS, ImageFilter

    pairs = []
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in IMAGE_FILTER_KEYS:  # moby's words (the docker CLI checked the form)
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
        pairs.append((key, value))
    return ImageFilter.parse(pairs)


@_handler
def cmd_images(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api.images import list_images
    from engine.cli.output import human_size, print_table

    listed = list_images(config, _image_filter(args.filter), all_images=args.all)
    rows = _rows(listed, args.repository)
    if args.quiet and (not args.format or args.format.strip() in ("table", "json")):  # docker: a template wins over -q
        for row in rows:  # formatter.imageFormat: one row, so one ID, per repository:tag
            print(row["record"].id if args.no_trunc else row["record"].short_id)
        return 0
    if args.format and args.format.strip() == "json":  # docker's `{{json .}}` of each imageContext
        from engine.cli.formatters import image_row
        from engine.util.gofmt import go_json

        sys.stdout.write("".join(go_json(image_row(_json_row(row)).template_json()) + "\n" for row in rows))
        return 0
    if args.format and args.format.strip() != "table":  # a Go template (docker's imageContext)
        from engine.cli.formatters import IMAGE_HEADERS, image_row
        from engine.cli.output import render_format

        contexts = []
        for row in rows:
            fields = _json_row(row)
            if args.no_trunc:
                fields["ID"] = row["record"].id
            contexts.append(image_row(fields))
        sys.stdout.write(render_format(args.format, contexts, IMAGE_HEADERS))
        return 0
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if args.digests else []), "IMAGE ID", "CREATED", "SIZE"]
    table = []
    for row in rows:
        record = row["record"]
        cells = [row["Repository"], row["Tag"]]
        if args.digests:
            cells.append(row["Digest"])
        cells += [record.id if args.no_trunc else record.short_id, _created_since(record.created), human_size(record.size)]
        table.append(cells)
    print_table(headers, table)
    return 0


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    from engine.cli.output import human_size
    from engine.util.units import go_human_size

    record = row["record"]
    return {
        "Containers": "N/A",
        "CreatedAt": _created_at(record.created),
        "CreatedSince": _created_since(record.created),
        "Digest": row["Digest"],
        "ID": record.short_id,
        "Repository": row["Repository"],
        "SharedSize": "N/A",
        "Size": human_size(record.size),
        "Tag": row["Tag"],
        "UniqueSize": "N/A",
        "VirtualSize": go_human_size(record.size),  # imageContext.VirtualSize: go-units HumanSize
    }


# --- rmi, tag, prune -----------------------------------------------------------------------------


@_handler
def cmd_rmi(args: argparse.Namespace, config: EngineConfig) -> int:
    store = _store(config)
    status = 0
    for ref in args.images:
        try:
            for line in store.remove(ref, force=args.force, prune=not args.no_prune):
                print(line)
        except PermissionError as exc:
            raise _permission_error("rmi", exc) from None
        except DockuiError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return status


@_handler
def cmd_tag(args: argparse.Namespace, config: EngineConfig) -> int:
    if "@" in args.target:  # the docker CLI's ImageTag refuses it before asking the engine
        raise InvalidArgument("refusing to create a tag with a digest reference")
    try:
        _store(config).tag(args.source, args.target)
    except PermissionError as exc:
        raise _permission_error("tag", exc) from None
    return 0


@_handler
def cmd_prune(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.api import images
    from engine.api.prune import IMAGE_KEYS, from_flags
    from engine.cli.output import print_pruned

    filters = from_flags(args.filter, IMAGE_KEYS)
    if not args.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if args.all else "all dangling images"
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    try:
        removals, freed = images.prune(config, all_images=args.all or filters.flag is False, filters=filters)
    except PermissionError as exc:
        raise _permission_error("image prune", exc) from None
    print_pruned("Deleted Images:", (f"{r.kind.lower()}: {r.value}" for r in removals), freed)
    return 0


# --- import --------------------------------------------------------------------------------------

@_handler
def cmd_import(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root

    require_root("import")  # file owners and device nodes need root
    from engine.image.changes import parse_changes

    changes = parse_changes(args.change)
    store = _store(config)
    source: Any = sys.stdin.buffer if args.tarball == "-" else _readable(args.tarball)
    record = store.import_tarball(source, args.reference, changes=changes, message=args.message)
    print(record.id)
    return 0


# --- save, load ------------------------------------------------------------------------------------


def _readable(path: str) -> str:
    """A file the client reads (load -i, import): refused in Go's os.Open words when it cannot be."""
    import os

    try:
        os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    return path


@_handler
def cmd_save(args: argparse.Namespace, config: EngineConfig) -> int:
    import os
    import tempfile
    from pathlib import Path

    store = _store(config)  # its save names every image before it writes a byte (moby's tarexport words)
    if not args.output:
        if sys.stdout.isatty():
            raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        store.save(args.images, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.output)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as out:
            store.save(args.images, out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # a failed save never leaves half an archive under the name
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return 0


@_handler
def cmd_load(args: argparse.Namespace, config: EngineConfig) -> int:
    from engine.cli import require_root

    require_root("load")  # file owners and device nodes need root
    if not args.input and sys.stdin.isatty():
        raise InvalidArgument("requested load from stdin, but stdin is empty")
    loaded = _store(config).load(_readable(args.input) if args.input else sys.stdin.buffer)
    if not args.quiet:
        for record, tags in loaded:
            for tag in tags:
                print(f"Loaded image: {tag}")
            if not tags:
                print(f"Loaded image ID: {record.id}")
    return 0


# --- inspect, history ------------------------------------------------------------------------------


@_handler
def cmd_inspect(args: argparse.Namespace, config: EngineConfig) -> int:

    store = _store(config)
    results = []
    status = 0
    for ref in args.images:
        try:
            results.append(store.inspect(ref))
        except DockuiError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            status = 1
    return max(status, print_formatted(results, args.format))


@_handler
def cmd_history(args: argparse.Namespace, config: EngineConfig) -> int:
    """`docker history` (image/history.go, formatter_history.go): the build steps newest first, each
    with the image it made (engine.api.images.history), through docker's historyContext: the
    default table, -q's IDs, --human=false's RFC 3339 times and byte counts, or --format."""
    from engine.api import images
    from engine.cli.output import render_format

    template = args.format or "table"
    if template.strip() == "table":
        template = "{{.ID}}" if args.quiet else _HISTORY_TABLE if args.human else _HISTORY_TABLE_RAW
    elif template.strip() == "json":
        template = "{{json .}}"
    rows = [_history_row(entry, trunc=not args.no_trunc, human=args.human) for entry in images.history(config, args.image)]
    if template.startswith("table"):
        from engine.cli.formatters import HeaderContext

        sys.stdout.write(render_format(template, rows, HeaderContext(_HISTORY_HEADERS, elem="string")))
    else:
        sys.stdout.write(render_format(template, rows))
    return 0


_HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
_HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                    "Size": "SIZE", "Comment": "COMMENT"}


def _history_row(entry: Any, *, trunc: bool, human: bool) -> Any:
    """historyContext of one entry: ID (stringid.TruncateID), CreatedAt (RFC 3339), CreatedSince
    (N/A before 2000, as docker's), CreatedBy (tabs as spaces, cut at 45), Size, Comment."""
    from datetime import UTC, datetime

    from engine.cli.formatters import Row, ellipsis
    from engine.cli.output import human_size

    epoch = _created_epoch(entry.created) or 0
    created_at = datetime.fromtimestamp(int(epoch), UTC).astimezone().isoformat().replace("+00:00", "Z")
    since = created_at if not human else "N/A" if epoch <= 946684800 else human_duration(time.time() - epoch) + " ago"
    created_by = entry.created_by.replace("\t", " ")
    image_id = entry.image_id.removeprefix("sha256:")[:12] if trunc else entry.image_id
    return Row("*image.historyContext", {
        "Comment": entry.comment, "CreatedAt": created_at, "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
        "CreatedSince": since, "ID": image_id, "Size": human_size(entry.size) if human else str(entry.size),
    })


def _go_bool(text: str) -> bool:
    """A Go bool flag's value (strconv.ParseBool)."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f'parse error on "{text}": invalid syntax')
