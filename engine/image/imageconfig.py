"""Docker's rules for turning an image config plus `run` flags into what the process gets.

Pure functions (no kernel): Entrypoint/Cmd and their overrides, Env merged with `-e`/`--env-file`,
WorkingDir/`-w`, User/`-u` (resolved against the container's /etc/passwd and /etc/group),
StopSignal. Kept apart from process.py so the rules can be tested fast and read in one place.
"""

from __future__ import annotations

import errno
import os
import posixpath
import signal
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import DEFAULTS
from engine.errors import InvalidArgument

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_ID = 2**31 - 1


def _inner(image_config: Mapping[str, object] | None) -> Mapping[str, object]:
    """Accept the whole OCI image config ({"config": {...}}) or just its "config" object."""
    if not image_config:
        return {}
    inner = image_config.get("config")
    if isinstance(inner, Mapping):
        return inner
    return image_config


def command_for(
    image_config: Mapping[str, object] | None,
    entrypoint_override: str | list[str] | None = None,
    cmd_override: list[str] | None = None,
) -> list[str]:
    """argv with moby's merge rules.

    `--entrypoint X` replaces the image Entrypoint and drops the image Cmd; `--entrypoint ""`
    clears the Entrypoint but keeps the image Cmd; trailing args replace Cmd. Nothing left ->
    "No command specified".
    """
    conf = _inner(image_config)
    if isinstance(entrypoint_override, str):
        entrypoint_override = [entrypoint_override] if entrypoint_override else []
    cmd = list(cmd_override or [])
    if entrypoint_override:
        entrypoint = list(entrypoint_override)
    else:
        if not cmd:
            cmd = list(conf.get("Cmd") or [])  # type: ignore[arg-type]
        if entrypoint_override is None:
            entrypoint = list(conf.get("Entrypoint") or [])  # type: ignore[arg-type]
        else:
            entrypoint = []
    argv = entrypoint + cmd
    if not argv:
        raise InvalidArgument("No command specified")
    return argv


def parse_env_file(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Docker's --env-file: KEY=VALUE lines taken literally, `#` comments, bare KEY from our env."""
    environ = os.environ if environ is None else environ
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {exc.strerror}") from None
    result = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key.strip() or any(c.isspace() for c in key):
            raise InvalidArgument(f"invalid environment variable in {path} line {number}: {raw!r}")
        if sep:
            result.append(f"{key}={value}")
        elif key in environ:
            result.append(f"{key}={environ[key]}")
    return result


def _env_key(item: str) -> str:
    return item.split("=", 1)[0]


def merge_env(
    image_env: list[str] | None,
    env: list[str] | None = None,
    env_files: list[str | os.PathLike[str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The container's Config.Env: image Env, then --env-file lines, then -e (later wins, order kept).

    `-e KEY` without `=` takes KEY from our own environment, or is dropped if we have none.
    """
    environ = os.environ if environ is None else environ
    overrides: list[str] = []
    for file in env_files or []:
        overrides += parse_env_file(file, environ)
    for item in env or []:
        if "=" in item:
            overrides.append(item)
        elif item in environ:
            overrides.append(f"{item}={environ[item]}")
    for item in overrides:
        if not _env_key(item):
            raise InvalidArgument(f"invalid environment variable: {item}")
    return replace_or_append_env(list(image_env or []), overrides)


def replace_or_append_env(base: list[str], overrides: list[str]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: same key replaced in place, new keys appended."""
    result = list(base)
    index = {_env_key(item): i for i, item in enumerate(result)}
    for item in overrides:
        key = _env_key(item)
        if key in index:
            result[index[key]] = item
        else:
            index[key] = len(result)
            result.append(item)
    return result


def process_env(config_env: list[str], hostname: str, tty: bool, link_env: list[str] | None = None) -> list[str]:
    """What the process really gets (moby CreateDaemonEnvironment): PATH, HOSTNAME, TERM, links, Env."""
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if tty:
        base.append("TERM=xterm")
    base += list(link_env or [])
    return replace_or_append_env(base, config_env)


def working_dir(image_config: Mapping[str, object] | None, override: str | None = None) -> str:
    """-w wins over the image WorkingDir; it must be absolute; default "/"."""
    value = override if override else (_inner(image_config).get("WorkingDir") or "")
    if not value:
        return "/"
    value = str(value)
    if not value.startswith("/"):
        raise InvalidArgument(f"the working directory '{value}' is invalid, it needs to be an absolute path")
    return posixpath.normpath(value)


def user_for(image_config: Mapping[str, object] | None, override: str | None = None) -> str:
    return override if override else str(_inner(image_config).get("User") or "")


def parse_signal(value: str | int) -> int:
    """"SIGTERM", "TERM", "15" -> 15."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isdigit():
        number = int(text) if text.isascii() and len(text) < 10 else 0  # not "²", nor 5000 digits past int()'s limit
        if 0 < number < signal.NSIG:
            return number
        raise InvalidArgument(f"Invalid signal: {value}")
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        if text.startswith("SIGRTMIN+") or text.startswith("SIGRTMAX-"):
            base = signal.SIGRTMIN if "MIN" in text else signal.SIGRTMAX
            offset = int(text[9:]) if text[9:].isascii() and text[9:].isdigit() and len(text) < 19 else -1
            number = base + offset if "MIN" in text else base - offset
            if offset >= 0 and signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                return int(number)
        raise InvalidArgument(f"Invalid signal: {value}") from None


def stop_signal(image_config: Mapping[str, object] | None, override: str | None = None) -> int:
    """--stop-signal, else the image StopSignal, else SIGTERM."""
    value = override or _inner(image_config).get("StopSignal") or DEFAULTS.stop_signal
    return parse_signal(str(value))


# ---- users and groups -------------------------------------------------------------------------


@dataclass
class ExecUser:
    """Who the process runs as; unpacks as (uid, gid, groups) like the agreed interface says."""

    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    home: str = "/"
    name: str = ""

    def __iter__(self):  # noqa: ANN204 - uid, gid, groups = resolve_user(...)
        return iter((self.uid, self.gid, self.groups))


def _open_in_root(root_fd: int, relpath: str) -> int:
    """Open a regular file under root_fd for reading, resolving symlinks as if root_fd were `/`.

    Each component is opened with O_NOFOLLOW relative to its parent; a symlink is expanded by
    hand (an absolute target restarts at root_fd, `..` stops at it), so nothing escapes rootfs.
    """
    pending = [p for p in relpath.split("/") if p and p != "."]
    dir_fds = [os.dup(root_fd)]
    links = 0
    try:
        while pending:
            part = pending.pop(0)
            if part == "..":
                if len(dir_fds) > 1:
                    os.close(dir_fds.pop())
                continue
            st = os.stat(part, dir_fd=dir_fds[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, f"{relpath}: too many symlinks")
                target = os.readlink(part, dir_fd=dir_fds[-1])
                if target.startswith("/"):
                    while len(dir_fds) > 1:
                        os.close(dir_fds.pop())
                pending = [p for p in target.split("/") if p and p != "."] + pending
                continue
            if not pending:
                fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fds[-1])
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise OSError(errno.EINVAL, f"{relpath} is not a regular file")
                return fd
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"{part} is not a directory")
            dir_fds.append(
                os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fds[-1])
            )
        raise IsADirectoryError(errno.EISDIR, f"{relpath} is a directory")
    finally:
        for fd in dir_fds:
            os.close(fd)


def read_root_file(rootfs: str | os.PathLike[str], relpath: str) -> str | None:
    """A text file of the container (None if missing), read without following links out of rootfs."""
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = _open_in_root(root_fd, relpath)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read(4 * 1024 * 1024).decode("utf-8", "replace")
    finally:
        os.close(root_fd)


def _parse_colon_file(text: str | None, fields: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < fields:
            parts += [""] * (fields - len(parts))
        rows.append(parts)
    return rows


def _parse_id(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > _MAX_ID:
        raise InvalidArgument(f"uids and gids must be in range 0-{_MAX_ID}")
    return value


def resolve_user(
    rootfs: str | os.PathLike[str], user: str, additional_groups: list[str] | None = None
) -> ExecUser:
    """runc's GetExecUser against the container's /etc/passwd and /etc/group.

    "" means root. "name" or "uid" picks the passwd entry (a numeric uid without one is fine,
    gid 0, home "/"); ":group" or ":gid" sets the primary group. Supplementary groups are the
    groups listing the user as a member, only when no group was given explicitly, plus
    `--group-add` ones.
    """
    user_arg, _, group_arg = (user or "").partition(":")
    passwd = _parse_colon_file(read_root_file(rootfs, "etc/passwd"), 7)
    group_rows = _parse_colon_file(read_root_file(rootfs, "etc/group"), 4)
    result = ExecUser(uid=0, gid=0, home="/")
    uid_arg = _parse_id(user_arg)
    matches = []
    for row in passwd:
        uid, gid = _parse_id(row[2]), _parse_id(row[3])
        if uid is None or gid is None:
            continue
        if (not user_arg and uid == 0) or (uid_arg is not None and uid == uid_arg) or (
            uid_arg is None and user_arg and row[0] == user_arg
        ):
            matches.append((row[0], uid, gid, row[5]))
    if matches:
        result.name, result.uid, result.gid, home = matches[0]
        result.home = home or "/"
    elif user_arg and uid_arg is None:
        raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
    elif uid_arg is not None:
        result.uid = uid_arg
    if group_arg:
        gid_arg = _parse_id(group_arg)
        found = [
            _parse_id(row[2]) for row in group_rows
            if _parse_id(row[2]) is not None and (row[0] == group_arg if gid_arg is None else _parse_id(row[2]) == gid_arg)
        ]
        if found:
            result.gid = found[0]  # type: ignore[assignment]
        elif gid_arg is not None:
            result.gid = gid_arg
        else:
            raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
    elif result.name:
        for row in group_rows:
            gid = _parse_id(row[2])
            if gid is not None and result.name in row[3].split(","):
                result.groups.append(gid)
    result.groups.insert(0, result.gid)  # Docker's getUser: the primary gid leads the supplementary groups
    for extra in additional_groups or []:
        gid = _parse_id(extra)
        if gid is None:
            found = [_parse_id(row[2]) for row in group_rows if row[0] == extra]
            if not found or found[0] is None:
                raise InvalidArgument(f"unable to find group {extra}: no matching entries in group file")
            gid = found[0]
        if gid not in result.groups:  # a group the user is already in is listed once
            result.groups.append(gid)
    return result
