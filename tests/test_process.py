"""The container's first process and exec, on the real kernel with a busybox overlay root."""

from __future__ import annotations

import errno
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from engine.errors import CommandNotFound, CommandNotInvokable, DockuiError, InvalidArgument
from engine.sandbox.process import ProcessSpec, exec_in_container, spawn_container, wait_status
from tests.test_process_support import (  # noqa: F401 - nothing_left is a fixture
    host_mounts_under,
    make_spec,
    nothing_left,
    processes_rooted_under,
    remove_cgroup,
    run,
    run_spec,
    status_field,
    v1_pids_cgroup,
)

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("nothing_left")]


def test_pid_one_and_clean_process_list(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, "echo $$; ps -o pid,args; true")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "1"
    rows = [line.split(None, 1) for line in lines[2:]]
    # Only the shell (pid 1) and its ps: nothing of the host is visible.
    assert len(rows) == 2 and rows[0][0] == "1" and "sh -c" in rows[0][1]
    assert "ps -o pid,args" in rows[1][1]


def test_hostname_and_uts_namespace(tmp_path: Path, busybox_rootfs: Path) -> None:
    host_before = os.uname().nodename
    result = run(tmp_path, busybox_rootfs, "hostname; hostname changed-inside", hostname="abc123def456")
    assert result.out.split() == ["abc123def456"]
    assert result.code != 0  # no CAP_SYS_ADMIN, as with Docker
    assert os.uname().nodename == host_before


def test_exit_code_and_streams_apart(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, "echo out; echo err >&2; exit 3")
    assert (result.code, result.out, result.err) == (3, "out\n", "err\n")


def test_pid_one_ignores_sigterm_without_handler_and_dies_on_sigkill(tmp_path: Path, busybox_rootfs: Path) -> None:
    pid = spawn_container(make_spec(tmp_path, busybox_rootfs, ["sleep", "60"]), (None, None, None))
    try:
        os.kill(pid, signal.SIGTERM)  # like `docker stop` on `sleep`: init has no handler
        time.sleep(0.2)
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    finally:
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    assert wait_status(status) == 128 + signal.SIGKILL


@pytest.mark.parametrize(
    ("argv", "error", "code"),
    [
        (["no-such-command"], CommandNotFound, 127),
        (["/no/such/file"], CommandNotFound, 127),
        (["/etc/passwd"], CommandNotInvokable, 126),
        (["/bin"], CommandNotInvokable, 126),
    ],
)
def test_exec_failures_map_to_126_and_127(tmp_path: Path, busybox_rootfs: Path, argv, error, code) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, argv)
    with pytest.raises(error) as info:
        spawn_container(spec, (None, None, None))
    assert info.value.exit_code == code
    assert argv[0] in str(info.value)


@pytest.mark.parametrize(
    ("content", "mode"),
    [("#!/bin/sh\necho hi\n", 0o644), ("\x00\x01 not a program", 0o755)],  # EACCES, ENOEXEC
)
def test_not_invokable_file_is_126(tmp_path: Path, busybox_rootfs: Path, content: str, mode: int) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["/script"])
    (spec.overlay.upperdir / "script").write_text(content)  # type: ignore[union-attr]
    os.chmod(spec.overlay.upperdir / "script", mode)  # type: ignore[union-attr]
    with pytest.raises(CommandNotInvokable):
        spawn_container(spec, (None, None, None))


def test_cwd_through_a_leaked_host_fd_is_refused(tmp_path: Path, busybox_rootfs: Path) -> None:
    """runc CVE-2024-21626: a working directory reached through /proc/self/fd/N of a host directory."""
    leaked = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    try:
        spec = make_spec(tmp_path, busybox_rootfs, ["true"], cwd=f"/proc/self/fd/{leaked}")
        with pytest.raises(DockuiError, match="outside of the container"):
            spawn_container(spec, (None, None, None))
        pid = spawn_container(make_spec(tmp_path, busybox_rootfs, ["sleep", "60"], name="d"), (None, None, None))
        try:
            with pytest.raises(DockuiError, match="outside of the container"):
                exec_in_container(pid, ["true"], ["PATH=/bin"], f"/proc/self/fd/{leaked}")
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    finally:
        os.close(leaked)


def test_unknown_user_is_a_clear_125(tmp_path: Path, busybox_rootfs: Path) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["id"], user="nosuchuser")
    with pytest.raises(InvalidArgument, match="unable to find user nosuchuser"):
        spawn_container(spec, (None, None, None))


def test_failing_callback_kills_the_child(tmp_path: Path, busybox_rootfs: Path) -> None:
    seen = []

    def explode(pid: int) -> None:
        seen.append(pid)
        raise RuntimeError("veth plugging failed")

    spec = make_spec(tmp_path, busybox_rootfs, ["sleep", "60"])
    with pytest.raises(RuntimeError, match="veth"):
        spawn_container(spec, (None, None, None), explode)
    with pytest.raises(ChildProcessError):
        os.waitpid(seen[0], os.WNOHANG)


def test_callback_sees_the_new_namespaces(tmp_path: Path, busybox_rootfs: Path) -> None:
    seen = {}

    def look(pid: int) -> None:
        for ns in ("pid", "mnt", "uts", "ipc", "net"):
            seen[ns] = os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        seen["pid_for_children_restored"] = os.readlink("/proc/self/ns/pid_for_children") == os.readlink(
            "/proc/self/ns/pid"
        )

    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["true"]), on_ready=look)
    assert result.code == 0
    assert seen == {"pid": True, "mnt": True, "uts": True, "ipc": True, "net": True,
                    "pid_for_children_restored": True}


def test_no_engine_fd_leaks_into_the_container(tmp_path: Path, busybox_rootfs: Path) -> None:
    leaked = os.open("/", os.O_RDONLY)  # inheritable on purpose: the engine must still close it
    os.set_inheritable(leaked, True)
    try:
        result = run(tmp_path, busybox_rootfs, "ls /proc/$$/fd; readlink /proc/$$/cwd")
    finally:
        os.close(leaked)
    fds, cwd = result.out.split()[:-1], result.out.split()[-1]
    assert sorted(fds) == ["0", "1", "2"]
    assert cwd == "/"


def test_user_group_and_supplementary_groups(tmp_path: Path, busybox_rootfs: Path) -> None:
    script = "grep -E '^(Uid|Gid|Groups|CapEff)' /proc/self/status; echo HOME=$HOME"
    app = run(tmp_path, busybox_rootfs, script, name="a", user="app")
    assert status_field(app.out, "Uid").split() == ["1000"] * 4
    assert status_field(app.out, "Gid").split() == ["1000"] * 4
    assert status_field(app.out, "Groups").split() == ["50", "1000"]
    assert status_field(app.out, "CapEff") == "0000000000000000"
    assert "HOME=/home/app" in app.out
    explicit = run(tmp_path, busybox_rootfs, script, name="b", user="app:nogroup")
    assert status_field(explicit.out, "Gid").split()[0] == "65534"
    assert status_field(explicit.out, "Groups") == "65534"
    numeric = run(tmp_path, busybox_rootfs, script, name="c", user="4242:4343")
    assert status_field(numeric.out, "Uid").split()[0] == "4242"
    assert status_field(numeric.out, "Gid").split()[0] == "4343"
    root = run(tmp_path, busybox_rootfs, script, name="d", additional_groups=["staff", "777"])
    assert status_field(root.out, "Uid").split()[0] == "0"
    assert status_field(root.out, "Groups").split() == ["0", "50", "777"]


def test_working_dir_is_created_and_used(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, "pwd", cwd="/srv/app/data")
    assert result.out.strip() == "/srv/app/data"
    assert (tmp_path / "c" / "diff" / "srv" / "app" / "data").is_dir()


def test_environment_is_exactly_the_spec(tmp_path: Path, busybox_rootfs: Path) -> None:
    env = ["PATH=/usr/bin:/bin", "HOSTNAME=x", "FOO=bar baz", "EMPTY="]
    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["env"], env=env))
    assert sorted(result.out.splitlines()) == sorted([*env, "HOME=/root"])


def test_signals_start_with_default_dispositions(tmp_path: Path, busybox_rootfs: Path) -> None:
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        result = run(tmp_path, busybox_rootfs, "grep -E '^Sig(Ign|Blk)' /proc/self/status")
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert status_field(result.out, "SigBlk") == "0000000000000000"
    ignored = int(status_field(result.out, "SigIgn"), 16)
    assert not ignored & (1 << (signal.SIGUSR1 - 1)) and not ignored & (1 << (signal.SIGPIPE - 1))


def test_network_none_has_only_loopback_and_host_shares(tmp_path: Path, busybox_rootfs: Path) -> None:
    none = run(tmp_path, busybox_rootfs, "ls /sys/class/net; cat /sys/class/net/lo/flags; "
               "readlink /proc/self/ns/net", name="n")
    assert none.out.split()[:-1] == ["lo", "0x9"]  # IFF_UP | IFF_LOOPBACK
    assert none.out.split()[-1] != os.readlink("/proc/self/ns/net")
    host = run(tmp_path, busybox_rootfs, "readlink /proc/self/ns/net", name="h", network="host")
    assert host.out.strip() == os.readlink("/proc/self/ns/net")


def test_tty_gives_a_controlling_terminal(tmp_path: Path, busybox_rootfs: Path) -> None:
    master, slave = os.openpty()
    spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo tty-ok; ls /dev/console"],
                     tty=True)
    try:
        pid = spawn_container(spec, (slave, slave, slave))
        os.close(slave)
        slave = -1
        output = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError as exc:  # EIO: the last slave fd closed
                assert exc.errno == errno.EIO
                break
            if not chunk:
                break
            output += chunk
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert b"tty-ok" in output and b"/dev/console" in output


def test_exec_sees_the_container_pid_namespace_and_files(tmp_path: Path, busybox_rootfs: Path) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", "echo marker > /tmp/m; exec sleep 60"])
    pid = spawn_container(spec, (None, None, None))
    try:
        deadline = time.monotonic() + 5
        while not (tmp_path / "c" / "diff" / "tmp" / "m").exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        out_r, out_w = os.pipe()
        code = exec_in_container(pid, ["sh", "-c", "ps -o pid,args; cat /tmp/m; hostname; id -u; exit 5"],
                                 ["PATH=/bin"], "/tmp", "app", False, (None, out_w, out_w))
        os.close(out_w)
        output = b""
        while chunk := os.read(out_r, 4096):
            output += chunk
        os.close(out_r)
        text = output.decode()
        assert code == 5
        assert "1 sleep 60" in text and "marker" in text
        assert text.split()[-1] == "1000"
        with pytest.raises(CommandNotFound):
            exec_in_container(pid, ["nope"], ["PATH=/bin"])
        with pytest.raises(CommandNotInvokable):
            exec_in_container(pid, ["/etc/passwd"], ["PATH=/bin"])
        with pytest.raises(DockuiError, match="chdir"):
            exec_in_container(pid, ["true"], ["PATH=/bin"], "/does/not/exist")
        # A background exec keeps running in the container until the container dies.
        child = exec_in_container(pid, ["sleep", "60"], ["PATH=/bin"], wait=False)
        assert os.readlink(f"/proc/{child}/ns/pid") == os.readlink(f"/proc/{pid}/ns/pid")
        os.kill(pid, signal.SIGKILL)  # pid 1 dies: the kernel kills the rest of the namespace
        # The exec'd process is our child: reap it first, or init's exit waits for it forever.
        assert os.waitpid(child, 0)[1] == signal.SIGKILL
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_exec_into_a_dead_container_is_not_found(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["true"]))
    assert result.code == 0
    with pytest.raises(DockuiError, match="not running"):
        exec_in_container(2**22 + 7, ["true"], ["PATH=/bin"])


def test_restart_in_same_process_gets_a_fresh_pid_namespace(tmp_path: Path, busybox_rootfs: Path) -> None:
    first = run(tmp_path, busybox_rootfs, "echo $$; readlink /proc/self/ns/pid", name="one")
    second = run(tmp_path, busybox_rootfs, "echo $$; readlink /proc/self/ns/pid", name="two")
    assert first.out.split()[0] == second.out.split()[0] == "1"
    assert first.out.split()[1] != second.out.split()[1]


def test_spec_without_command_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        spawn_container(ProcessSpec(argv=[], rootfs=Path("/nonexistent")), (None, None, None))


def test_exec_joins_the_container_cgroup(tmp_path: Path, busybox_rootfs: Path) -> None:
    group = v1_pids_cgroup(f"dockui-iso-{uuid.uuid4().hex[:8]}")
    if group is None:
        pytest.skip("no cgroup v1 pids hierarchy on this host")
    pid = None
    try:
        spec = make_spec(tmp_path, busybox_rootfs, ["sleep", "60"])
        pid = spawn_container(spec, (None, None, None), lambda p: (group / "cgroup.procs").write_text(str(p)))
        child = exec_in_container(pid, ["sleep", "60"], ["PATH=/bin"], wait=False)
        assert sorted(int(p) for p in (group / "cgroup.procs").read_text().split()) == sorted([pid, child])
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        remove_cgroup(group)


def test_process_joins_its_cgroup_itself_before_its_namespaces(tmp_path: Path, busybox_rootfs: Path) -> None:
    """spec.cgroup_procs and no callback: no round trip with the parent, yet the process is in
    the group, and its private cgroup namespace is rooted there (it sees itself at /)."""
    group = v1_pids_cgroup(f"dockui-iso-{uuid.uuid4().hex[:8]}")
    if group is None:
        pytest.skip("no cgroup v1 pids hierarchy on this host")
    pid = None
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    # Shell builtins only: no short-lived child may be in the group when it is read.
    script = "while read -r line; do case $line in *:pids:*) echo $line;; esac; done < /proc/self/cgroup; exec sleep 60"
    try:
        spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], cgroupns="private")
        spec.cgroup_procs = [group / "cgroup.procs"]
        pid = spawn_container(spec, (None, out_w, None))
        os.close(out_w)
        out_w = -1
        inside = b""
        while not inside.endswith(b"\n"):
            chunk = os.read(out_r, 4096)
            assert chunk, "the container printed nothing"
            inside += chunk
        assert inside.decode().strip().endswith(":pids:/")
        assert [int(p) for p in (group / "cgroup.procs").read_text().split()] == [pid]
        assert Path(f"/proc/{pid}/cgroup").read_text().count(f":pids:/{group.name}\n") == 1
        missing = make_spec(tmp_path, busybox_rootfs, ["true"], name="b")
        missing.cgroup_procs = [group / "no-such-group" / "cgroup.procs"]
        with pytest.raises(DockuiError, match="No such file"):
            spawn_container(missing, (None, None, None))  # refused before the user's process runs
    finally:
        os.close(out_r)
        if out_w >= 0:
            os.close(out_w)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        remove_cgroup(group)


def _net_fds() -> set[str]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("net:"):
            found.add(target)
    return found


def test_network_namespace_made_ahead_becomes_the_containers(tmp_path: Path, busybox_rootfs: Path) -> None:
    """prepare_ahead (a monitor forked ahead, while it waits) makes the namespace with `lo` up; the
    next container gets it, and nobody else: the caller stays in its own and keeps no handle."""
    from engine.sandbox import process

    own = os.readlink("/proc/self/ns/net")
    process.prepare_ahead()
    assert os.readlink("/proc/self/ns/net") == own
    made = os.readlink(f"/proc/self/fd/{process._ahead.netns}")
    assert made != own
    script = "readlink /proc/self/ns/net; cat /sys/class/net/lo/flags"
    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script]))
    assert result.code == 0, result.err
    assert result.out.split() == [made, "0x9"]  # IFF_UP | IFF_LOOPBACK
    assert made not in _net_fds()
    again = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], name="b"))  # none made ahead
    assert again.out.split()[0] not in (made, own) and again.out.split()[1] == "0x9"
    process.prepare_ahead()
    ahead = os.readlink(f"/proc/self/fd/{process._ahead.netns}")
    host = run_spec(make_spec(tmp_path, busybox_rootfs, ["readlink", "/proc/self/ns/net"], name="h", network="host"))
    assert host.out.strip() == own and ahead not in _net_fds()  # unused, and closed


def test_umask_and_closed_caller_stdio(tmp_path: Path, busybox_rootfs: Path) -> None:
    """The engine's umask does not leak in; a caller without fds 0-2 still gets errors reported."""
    old = os.umask(0o077)
    try:
        result = run(tmp_path, busybox_rootfs, "umask", name="a")
    finally:
        os.umask(old)
    assert result.out.strip() == "0022"
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    try:
        for fd in (0, 1, 2):
            os.close(fd)
        with pytest.raises(CommandNotFound):  # the error channel would be fd 0-2 without care
            spawn_container(make_spec(tmp_path, busybox_rootfs, ["no-such-command"], name="b"), (None, None, None))
    finally:
        for fd, copy in enumerate(saved):
            os.dup2(copy, fd)
            os.close(copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"cwd": "relative"}, "absolute path"), ({"network": "container:web"}, "pid"),
     ({"network": "container:999999999"}, "does not exist")],
)
def test_bad_spec_is_refused_before_forking(tmp_path: Path, busybox_rootfs: Path, changes, message) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["true"], **changes)
    with pytest.raises(InvalidArgument, match=message):
        spawn_container(spec, (None, None, None))


def test_joining_another_containers_network(tmp_path: Path, busybox_rootfs: Path) -> None:
    first = spawn_container(make_spec(tmp_path, busybox_rootfs, ["sleep", "60"], name="a"), (None, None, None))
    try:
        joined = run(tmp_path, busybox_rootfs, "readlink /proc/self/ns/net", name="b", network=f"container:{first}")
        assert joined.out.strip() == os.readlink(f"/proc/{first}/ns/net")
    finally:
        os.kill(first, signal.SIGKILL)
        os.waitpid(first, 0)
