"""Docker's image-config rules (pure, fast): command, env, workdir, user, stop signal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.image.imageconfig import (
    DEFAULT_PATH,
    command_for,
    merge_env,
    parse_signal,
    process_env,
    read_root_file,
    resolve_user,
    stop_signal,
    user_for,
    working_dir,
)

SH_IMAGE = {"Cmd": ["sh"], "Env": ["PATH=/bin"]}
ENTRY_IMAGE = {"Entrypoint": ["/entry.sh"], "Cmd": ["--default"]}


@pytest.mark.parametrize(
    ("image", "entrypoint", "cmd", "expected"),
    [
        (SH_IMAGE, None, None, ["sh"]),
        (SH_IMAGE, None, ["echo", "hi"], ["echo", "hi"]),
        (ENTRY_IMAGE, None, None, ["/entry.sh", "--default"]),
        (ENTRY_IMAGE, None, ["x"], ["/entry.sh", "x"]),
        (ENTRY_IMAGE, "/bin/other", None, ["/bin/other"]),  # --entrypoint drops the image Cmd
        (ENTRY_IMAGE, "/bin/other", ["a", "b"], ["/bin/other", "a", "b"]),
        (ENTRY_IMAGE, "", None, ["--default"]),  # --entrypoint "" keeps the image Cmd
        (ENTRY_IMAGE, "", ["ls"], ["ls"]),
        (ENTRY_IMAGE, ["/a", "-b"], None, ["/a", "-b"]),
        ({"config": ENTRY_IMAGE}, None, None, ["/entry.sh", "--default"]),  # whole OCI image config
        ({"Entrypoint": None, "Cmd": None}, None, ["true"], ["true"]),
    ],
)
def test_command_rules(image, entrypoint, cmd, expected) -> None:
    assert command_for(image, entrypoint, cmd) == expected


@pytest.mark.parametrize(("image", "entrypoint"), [({}, None), ({"Entrypoint": ["/e"]}, ""), (None, None)])
def test_no_command_is_refused(image, entrypoint) -> None:
    with pytest.raises(InvalidArgument, match="No command specified"):
        command_for(image, entrypoint, None)


def test_env_merge_order_and_host_lookups(tmp_path: Path) -> None:
    env_file = tmp_path / "env.list"
    env_file.write_text("# comment\n\nA=from-file\nQUOTED=\"kept as is\"\nFROM_HOST\nMISSING\nD=x=y\n")
    environ = {"FROM_HOST": "h1", "B": "h2"}
    merged = merge_env(["PATH=/bin", "A=image", "KEEP=1"], ["A=from-flag", "B", "C"], [env_file], environ)
    assert merged == [
        "PATH=/bin", "A=from-flag", "KEEP=1", 'QUOTED="kept as is"', "FROM_HOST=h1", "D=x=y", "B=h2",
    ]


def test_env_rejects_empty_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid environment variable"):
        merge_env([], ["=oops"], None, {})
    bad = tmp_path / "bad.env"
    bad.write_text("MY VAR=1\n")
    with pytest.raises(InvalidArgument, match="line 1"):
        merge_env([], None, [bad], {})
    with pytest.raises(InvalidArgument, match="open"):
        merge_env([], None, [tmp_path / "missing.env"], {})


def test_process_env_like_docker() -> None:
    assert process_env(["A=1"], "abc", False) == [f"PATH={DEFAULT_PATH}", "HOSTNAME=abc", "A=1"]
    assert process_env(["PATH=/x", "TERM=dumb"], "h", True) == ["PATH=/x", "HOSTNAME=h", "TERM=dumb"]
    assert process_env([], "h", True, ["DB_PORT=tcp://x"])[2:] == ["TERM=xterm", "DB_PORT=tcp://x"]


@pytest.mark.parametrize(
    ("image", "override", "expected"),
    [({}, None, "/"), ({"WorkingDir": "/app"}, None, "/app"), ({"WorkingDir": "/app"}, "/x/../y/", "/y"),
     ({"WorkingDir": ""}, "", "/")],
)
def test_working_dir(image, override, expected) -> None:
    assert working_dir(image, override) == expected


def test_relative_working_dir_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="absolute path"):
        working_dir({}, "relative/dir")


def test_user_override_and_signals() -> None:
    assert user_for({"User": "app"}, None) == "app"
    assert user_for({"User": "app"}, "0:0") == "0:0"
    assert user_for({}, None) == ""
    assert parse_signal("SIGKILL") == 9 and parse_signal("term") == 15 and parse_signal("10") == 10
    assert parse_signal("SIGRTMIN+3") == parse_signal("SIGRTMIN") + 3
    assert stop_signal({"StopSignal": "SIGQUIT"}) == 3
    assert stop_signal({"StopSignal": "SIGQUIT"}, "SIGUSR1") == 10
    assert stop_signal({}) == 15
    for bad in ("SIGNOPE", "0", "999", ""):
        with pytest.raises(InvalidArgument):
            parse_signal(bad)


# ---- users -------------------------------------------------------------------------------------


@pytest.fixture
def user_root(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1000:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root\nstaff:x:50:app,other\napp:x:1000:\n")
    return root


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, 0, [0, 10], "/root")),
        ("root", (0, 0, [0, 10], "/root")),
        ("app", (1000, 1000, [1000, 50], "/home/app")),
        ("1000", (1000, 1000, [1000, 50], "/home/app")),
        ("app:staff", (1000, 50, [50], "/home/app")),  # explicit group: only the primary gid, no member-of ones
        ("app:1234", (1000, 1234, [1234], "/home/app")),
        ("4242", (4242, 0, [0], "/")),  # a uid without an entry runs with gid 0, like Docker
        ("4242:4343", (4242, 4343, [4343], "/")),
        ("nobody", (65534, 65534, [65534], "/nonexistent")),
    ],
)
def test_resolve_user(user_root: Path, user: str, expected) -> None:
    result = resolve_user(user_root, user)
    assert (result.uid, result.gid, result.groups, result.home) == expected


def test_resolve_user_errors_and_group_add(user_root: Path) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user ghost: no matching entries in passwd file"):
        resolve_user(user_root, "ghost")
    with pytest.raises(InvalidArgument, match="unable to find group ghosts"):
        resolve_user(user_root, "app:ghosts")
    with pytest.raises(InvalidArgument, match="range"):
        resolve_user(user_root, "99999999999")
    assert resolve_user(user_root, "app", ["wheel", "4000"]).groups == [1000, 50, 10, 4000]
    uid, gid, groups = resolve_user(user_root, "app")
    assert (uid, gid, groups) == (1000, 1000, [1000, 50])


def test_user_files_never_read_outside_the_root(tmp_path: Path, user_root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    passwd = user_root / "etc" / "passwd"
    passwd.unlink()
    os.symlink("../../outside/passwd", passwd)  # climbs out of the root: clamped at "/"
    with pytest.raises(InvalidArgument, match="unable to find user evil"):
        resolve_user(user_root, "evil")
    passwd.unlink()
    os.symlink(str(outside / "passwd"), passwd)  # absolute: resolved inside the root
    assert read_root_file(user_root, "etc/passwd") is None
    (user_root / "real").mkdir()
    (user_root / "real" / "passwd").write_text("inside:x:7:7::/:/bin/sh\n")
    passwd.unlink()
    os.symlink("/real/passwd", passwd)
    assert resolve_user(user_root, "inside").uid == 7
    assert resolve_user(user_root, "123").uid == 123  # numeric users need no passwd entry
