"""`dockui build`: the classic builder (engine.build) from the command line, printing what the docker
CLI prints for a non-BuildKit build (`Step 1/5 : FROM busybox`, ` ---> <id>`, ...).

PATH is a directory (its `.dockerignore` applies), or `-`: a tar context (plain or gzip) or a lone
Dockerfile on stdin. `-f` names the Dockerfile (relative to the current directory, as the docker
CLI reads it; default PATH/Dockerfile; `-` reads it from stdin). A failed RUN prints Docker's
line (`The command '...' returned a non-zero code: N`) and exits with N; Ctrl-C, SIGTERM and SIGHUP
remove the running RUN's container before exiting (130). The builder is imported only in the
handler: `dockui run` and `ps` never load it.
"""

from __future__ import annotations

import argparse
import os
import sys

from engine.config import EngineConfig
from engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def register(subparsers: argparse._SubParsersAction, verb: str | None = None) -> None:  # noqa: ARG001
    p = subparsers.add_parser("build", help="Build an image from a Dockerfile (the classic builder)")
    p.add_argument("-t", "--tag", action="append", default=[], help="name and optionally a tag (name:tag)")
    p.add_argument("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY[=VALUE]", help="set a build-time variable")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="set metadata for the image")
    p.add_argument("--target", help="the build stage to build")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--no-cache", action="store_true", help="do not use the cache")
    p.add_argument("--network", default="default", help="RUN's network: bridge (default), none or host")
    # docker's boolean flag: `--rm` or `--rm=false`, never `--rm false` (the next word is PATH).
    p.add_argument("--rm", action="store_const", const="true", default="true", dest="rm",
                   help="remove intermediate containers after a successful build (default true; --rm=false keeps them)")
    p.add_argument("--rm=true", "--rm=1", action="store_const", const="true", dest="rm", help=argparse.SUPPRESS)
    p.add_argument("--rm=false", "--rm=0", action="store_const", const="false", dest="rm", help=argparse.SUPPRESS)
    p.add_argument("--force-rm", action="store_true", help="always remove intermediate containers")
    p.add_argument("--pull", action="store_true", help="always pull the base images")
    p.add_argument("--platform", help="only linux/amd64")
    p.add_argument("--iidfile", help="write the image ID to this file")
    p.add_argument("path", metavar="PATH", help="the build context: a directory, or - for stdin")
    p.set_defaults(handler=cmd_build)


def _bool(value: str, flag: str) -> bool:
    if value.lower() in ("true", "1", "t", "yes"):
        return True
    if value.lower() in ("false", "0", "f", "no"):
        return False
    raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseBool: parsing "{value}": invalid syntax')


def _build_args(values: list[str]) -> tuple[tuple[str, str], ...]:
    """`KEY=VALUE`, or `KEY` alone: its value from our environment, left out when unset (docker CLI)."""
    pairs = []
    for item in values:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid build-arg {item!r}: KEY[=VALUE]")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        pairs.append((key, value))
    return tuple(pairs)


def _labels(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values:
        key, _, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {item!r}: KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


def _context(args: argparse.Namespace, config: EngineConfig, scratch: list[Path]) -> tuple[Path, str]:
    """The context directory and the Dockerfile's text."""
    import tempfile
    from pathlib import Path

    if args.path == "-":
        if args.file == "-":
            raise InvalidArgument("invalid argument: can't use stdin for both build context and dockerfile")
        data = sys.stdin.buffer.read()
        config.tmp_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="build-context-", dir=config.tmp_dir))
        scratch.append(root)
        if _looks_like_archive(data):
            import io

            from engine.build.context import unpack_context

            unpack_context(io.BytesIO(data), root)
            name = args.file or "Dockerfile"
            return root, _read_dockerfile(root / name, name)
        return root, data.decode(errors="replace")
    root = Path(args.path)
    if not root.is_dir():
        raise InvalidArgument(f'unable to prepare context: path "{args.path}" not found')
    if args.file == "-":
        return root, sys.stdin.read()
    dockerfile = Path(args.file) if args.file else root / "Dockerfile"
    return root, _read_dockerfile(dockerfile, str(dockerfile))


def _looks_like_archive(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b" or (len(data) >= 262 and data[257:262] == b"ustar")


def _read_dockerfile(path: Path, shown: str) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        raise InvalidArgument(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                              f"lstat {shown}: no such file or directory") from None
    except IsADirectoryError:
        raise InvalidArgument(f"the Dockerfile {shown} is a directory") from None


def cmd_build(args: argparse.Namespace, config: EngineConfig) -> int:
    import shutil

    from engine.cli import require_root

    require_root("build")
    from engine.api.build import BuildOutput, BuildRequest, StepFailed, build

    scratch: list[Path] = []
    _interrupt_on_termination()
    try:
        root, dockerfile = _context(args, config, scratch)
        request = BuildRequest(
            context=root, dockerfile=dockerfile, tags=tuple(args.tag), build_args=_build_args(args.build_arg),
            labels=_labels(args.label), target=args.target, no_cache=args.no_cache, network=args.network,
            remove=_bool(args.rm, "--rm"), force_remove=args.force_rm, pull=args.pull, platform=args.platform,
        )
        quiet: list[str] = []

        def stream(text: str) -> None:
            if args.quiet:
                quiet.append(text)
                return
            sys.stdout.write(text)
            sys.stdout.flush()

        try:
            result = build(config, request, BuildOutput(stream, lambda _id: None))
        except StepFailed as exc:
            if quiet:
                sys.stderr.write("".join(quiet))
            print(str(exc), file=sys.stderr)
            return exc.code or 1
        if args.quiet:
            print(result.image_id)
        if args.iidfile:
            with open(args.iidfile, "w") as f:
                f.write(result.image_id)
        return 0
    finally:
        for path in scratch:
            shutil.rmtree(path, ignore_errors=True)


def _interrupt_on_termination() -> None:
    """SIGTERM and SIGHUP end the build as Ctrl-C does (KeyboardInterrupt: the running RUN's
    container is removed on the way out), not by dying at once with the container left behind."""
    import signal

    def interrupt(_number: int, _frame: object) -> None:
        raise KeyboardInterrupt

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, interrupt)
