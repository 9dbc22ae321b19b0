"""The container's filesystem view: overlay, /dev, /proc, /sys, binds, masks, read-only."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from engine.errors import DockuiError
from engine.sandbox.process import BindMount, ProcessSpec, spawn_container
from engine.sandbox.rootfs import READONLY_FORCE_RECURSIVE, READONLY_TOP
from engine.sandbox.security import DEFAULT_MASKED_PATHS
from tests.test_process_support import (  # noqa: F401 - nothing_left is a fixture
    host_mounts_under,
    make_spec,
    nothing_left,
    processes_rooted_under,
    remove_cgroup,
    run,
    run_spec,
    v1_pids_cgroup,
)

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("nothing_left")]


def test_writes_land_in_the_upper_dir_not_the_image(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, "echo hello > /root/new-file && rm /etc/group && cat /root/new-file")
    assert result.code == 0, result.err
    assert result.out == "hello\n"
    upper = tmp_path / "c" / "diff"
    assert (upper / "root" / "new-file").read_text() == "hello\n"
    assert not (busybox_rootfs / "root" / "new-file").exists()
    assert (busybox_rootfs / "etc" / "group").exists()  # the image keeps it...
    whiteout = os.lstat(upper / "etc" / "group")  # ...the container layer records a whiteout
    assert os.major(whiteout.st_rdev) == 0 and os.minor(whiteout.st_rdev) == 0
    # The overlay only ever existed in the container's mount namespace.
    assert list((tmp_path / "c" / "merged").iterdir()) == []


def test_masked_paths_are_empty_and_proc_sys_is_read_only(tmp_path: Path, busybox_rootfs: Path) -> None:
    present = [p for p in DEFAULT_MASKED_PATHS if os.path.exists(p)]
    assert "/proc/timer_list" in present and "/sys/firmware" in present
    script = (
        "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l; "
        "touch /sys/firmware/x 2>/dev/null || echo firmware-ro; "
        "echo x 2>/dev/null > /proc/sys/kernel/domainname || echo proc-sys-ro; "
        "echo c 2>/dev/null > /proc/sysrq-trigger || echo sysrq-ro; "
        "grep -c ' /proc/sys ' /proc/self/mountinfo"
    )
    result = run(tmp_path, busybox_rootfs, script)
    assert os.path.getsize("/proc/timer_list") == 0 and len(Path("/proc/timer_list").read_bytes()) > 0
    assert result.out.split() == ["0", "0", "0", "firmware-ro", "proc-sys-ro", "sysrq-ro", "1"]


def test_masking_refuses_a_fake_dev_null(tmp_path: Path, busybox_rootfs: Path) -> None:
    """runc CVE-2025-31133: /dev/null replaced by something else must not be bound over paths."""
    fake = tmp_path / "fake-null"
    fake.write_text("not the null device")
    spec = make_spec(tmp_path, busybox_rootfs, ["true"], mounts=[BindMount(fake, "/dev/null")])
    with pytest.raises(DockuiError, match="null device"):
        spawn_container(spec, (None, None, None))


def test_dev_has_the_standard_nodes_and_mounts(tmp_path: Path, busybox_rootfs: Path) -> None:
    script = (
        "for n in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$n; done; "
        "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; "
        "head -c 4 /dev/zero | wc -c; echo ok > /dev/null; "
        "awk '$2 ~ /^\\/(dev|proc|sys)/ {print $2, $3, $4}' /proc/mounts; ls /dev"
    )
    result = run(tmp_path, busybox_rootfs, script, shm_size=8 * 1024 * 1024)
    lines = result.out.splitlines()
    nodes = {line.split()[0]: line.split()[-2:] for line in lines[:6]}
    assert nodes == {
        "/dev/null": ["1:3", "666"], "/dev/zero": ["1:5", "666"], "/dev/full": ["1:7", "666"],
        "/dev/random": ["1:8", "666"], "/dev/urandom": ["1:9", "666"], "/dev/tty": ["5:0", "666"],
    }
    assert all("character special file" in line for line in lines[:6])
    assert lines[6:11] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]
    assert lines[11] == "4"
    mounts = {line.split()[0]: line.split()[1:] for line in lines[12:] if line.startswith("/")}
    assert mounts["/proc"][0] == "proc" and "nosuid" in mounts["/proc"][1]
    assert mounts["/dev"][0] == "tmpfs"
    assert mounts["/dev/pts"][0] == "devpts" and "ptmxmode=666" in mounts["/dev/pts"][1]
    assert mounts["/dev/shm"][0] == "tmpfs" and "size=8192k" in mounts["/dev/shm"][1]
    assert mounts["/dev/mqueue"][0] == "mqueue"
    assert mounts["/sys"][0] == "sysfs" and mounts["/sys"][1].startswith("ro,")
    assert sorted(lines[-15:]) == sorted(
        ["core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
         "tty", "urandom", "zero"]
    )  # nothing of the host's /dev


def test_bind_mounts_rw_ro_and_etc_files(tmp_path: Path, busybox_rootfs: Path) -> None:
    data = tmp_path / "host-data"
    data.mkdir()
    (data / "in.txt").write_text("from host\n")
    config = tmp_path / "host-config"
    config.mkdir()
    (config / "conf").write_text("ro\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n10.0.0.2\tcontainer-x\n")
    hostname = tmp_path / "hostname"
    hostname.write_text("container-x\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\n")
    script = (
        "cat /data/in.txt; echo written > /data/out.txt; cat /config/conf; "
        "echo x 2>/dev/null > /config/conf || echo config-ro; "
        "cat /etc/hosts /etc/hostname /etc/resolv.conf"
    )
    result = run(
        tmp_path, busybox_rootfs, script.replace("/config/", "/srv/deep/config/"),
        mounts=[BindMount(data, "/data"), BindMount(config, "/srv/deep/config", readonly=True)],
        hosts_file=hosts, hostname_file=hostname, resolv_conf=resolv,
    )
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "from host", "ro", "config-ro",
        "127.0.0.1\tlocalhost", "10.0.0.2\tcontainer-x", "container-x", "nameserver 127.0.0.53",
    ]
    assert (data / "out.txt").read_text() == "written\n"
    assert (config / "conf").read_text() == "ro\n"


def test_missing_bind_source_is_a_clear_error(tmp_path: Path, busybox_rootfs: Path) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["true"], mounts=[BindMount(tmp_path / "nope", "/data")])
    with pytest.raises(DockuiError, match="nope"):
        spawn_container(spec, (None, None, None))


def test_read_only_root(tmp_path: Path, busybox_rootfs: Path) -> None:
    script = "touch /x 2>/dev/null || echo root-ro; echo ok > /dev/shm/x && cat /dev/shm/x"
    result = run(tmp_path, busybox_rootfs, script, read_only=True)
    assert result.out.split() == ["root-ro", "ok"]
    assert not (tmp_path / "c" / "diff" / "x").exists()


def test_mount_point_symlink_is_refused(tmp_path: Path, busybox_rootfs: Path) -> None:
    """An image whose /proc is a symlink must not get procfs mounted where the link points."""
    spec = make_spec(tmp_path, busybox_rootfs, ["true"])
    upper = spec.overlay.upperdir  # type: ignore[union-attr]
    os.symlink("/etc", upper / "proc")  # the container layer shadows the image's /proc dir
    with pytest.raises(DockuiError, match="symlink"):
        spawn_container(spec, (None, None, None))


def test_plain_directory_root_without_overlay(tmp_path: Path, busybox_rootfs: Path) -> None:
    """A bundle-style rootfs (no layers): bind-mounted onto itself, still pivot_root'ed."""
    root = tmp_path / "bundle-root"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    result = run_spec(ProcessSpec(argv=["sh", "-c", "echo $$; ls /"], rootfs=root, env=["PATH=/bin"]))
    assert result.out.split()[0] == "1" and "bin" in result.out.split()


def test_sys_fs_cgroup_shows_the_containers_own_group_read_only(tmp_path: Path, busybox_rootfs: Path) -> None:
    """A private cgroup namespace, the group joined by the parent during the handshake."""
    group = v1_pids_cgroup(f"dockui-iso-{uuid.uuid4().hex[:8]}")
    if group is None:
        pytest.skip("no cgroup v1 pids hierarchy on this host")
    try:
        (group / "pids.max").write_text("77")
        spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c",
                         "grep ':pids:' /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max; "
                         "echo 5 2>/dev/null > /sys/fs/cgroup/pids/pids.max || echo cgroup-ro"], cgroupns="private")
        result = run_spec(spec, on_ready=lambda pid: (group / "cgroup.procs").write_text(str(pid)))
        assert result.out.split() == [result.out.split()[0], "77", "cgroup-ro"]
        assert result.out.split()[0].endswith(":pids:/")  # the cgroup namespace hides the host path
        assert (group / "pids.max").read_text().strip() == "77"
    finally:
        remove_cgroup(group)


CGROUP_VIEW = ("grep ':pids:' /proc/self/cgroup; ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max; "
               "ls -d /sys/fs/cgroup/pids/*/ 2>/dev/null | wc -l; grep ' /sys/fs/cgroup/pids ' /proc/self/mountinfo; "
               "echo 5 2>/dev/null > /sys/fs/cgroup/pids/pids.max || echo pids-max-ro; "
               "mkdir /sys/fs/cgroup/pids/x 2>/dev/null || echo mkdir-refused")


@pytest.mark.parametrize("mode", ["host", "private"])
def test_sys_fs_cgroup_in_each_cgroupns_mode(tmp_path: Path, busybox_rootfs: Path, mode: str) -> None:
    """The process joins its group itself (spec.cgroup_procs, as the engine starts containers): in
    the host's cgroup namespace /proc/self/cgroup names the group's full path and /sys/fs/cgroup/pids
    is that group's directory bound read-only; in a private one both show it as `/`. Either way only
    the hierarchies it joined are there (the others would show groups that are not its own)."""
    group = v1_pids_cgroup(f"dockui-iso-{uuid.uuid4().hex[:8]}")
    if group is None:
        pytest.skip("no cgroup v1 pids hierarchy on this host")
    sibling = group.parent / f"{group.name}-sibling"
    try:
        sibling.mkdir()  # a host group the container must not see
        (group / "pids.max").write_text("77")
        spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", CGROUP_VIEW], cgroupns=mode,
                         cgroup_procs=[group / "cgroup.procs"])
        result = run_spec(spec)
        lines = result.out.splitlines()
        assert result.code == 0, result.err
        expected = f"/{group.name}" if mode == "host" else "/"
        assert lines[0].endswith(f":pids:{expected}")
        assert lines[1:4] == ["pids", "77", "0"]  # only the joined hierarchy; no group below it
        assert lines[4].split()[3] == expected  # the mount's root: the container's group
        assert lines[4].split()[5].split(",")[0] == "ro"
        assert lines[5:] == ["pids-max-ro", "mkdir-refused"]
        assert (group / "pids.max").read_text().strip() == "77"
        assert not (group / "x").exists()
    finally:
        remove_cgroup(sibling)
        remove_cgroup(group)


def test_host_cgroupns_without_known_groups_shows_nothing(tmp_path: Path, busybox_rootfs: Path) -> None:
    """Host namespace, groups joined by the caller during the handshake: which directories are the
    container's is unknown to the process, so /sys/fs/cgroup is left empty (the host's hierarchies
    mounted there would show every group of the host)."""
    spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", "ls -A /sys/fs/cgroup | wc -l"], cgroupns="host")
    result = run_spec(spec, on_ready=lambda pid: None)
    assert result.code == 0, result.err
    assert result.out.split() == ["0"]


def test_store_image_layers_through_lowerdir_option(tmp_path: Path, engine_config, busybox_image) -> None:
    """The agreed interface: the store's short-link lowerdir, mounted from a chdir'ed layers_dir."""
    from engine.image.store import ImageStore
    from engine.sandbox.process import OverlayLayers

    store = ImageStore(engine_config)
    container_id = uuid.uuid4().hex * 2
    rw = store.create_rw_layer(container_id, busybox_image.id)
    try:
        overlay = OverlayLayers(engine_config.layers_dir, store.lowerdir_option(busybox_image.id),
                                rw / "diff", rw / "work")
        assert overlay.lowerdir.startswith("l/")
        spec = ProcessSpec(argv=["sh", "-c", "echo $$ > /pid-file; cat /etc/passwd | head -1"], rootfs=rw / "merged",
                           overlay=overlay, env=["PATH=/bin"])
        result = run_spec(spec)
        assert result.out == "root:x:0:0:root:/root:/bin/sh\n"
        assert (rw / "diff" / "pid-file").read_text() == "1\n"
        assert host_mounts_under(engine_config.root) == []
    finally:
        store.remove_rw_layer(container_id)
    assert not rw.exists()


def test_too_many_layers_is_a_clear_error(tmp_path: Path, busybox_rootfs: Path) -> None:
    spec = make_spec(tmp_path, busybox_rootfs, ["true"])
    spec.overlay.lowerdir = ":".join([busybox_rootfs.name] * 600)  # type: ignore[union-attr]
    with pytest.raises(DockuiError, match="too many layers"):
        spawn_container(spec, (None, None, None))


@pytest.fixture(name="source_with_submount")
def source_with_submount_fixture(tmp_path: Path):  # noqa: ANN201
    """A host directory with a tmpfs mounted below it (`sub`), as a bind source; unmounted after."""
    from engine.kernel import syscalls

    source = tmp_path / "bind-src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "under-the-tmpfs").write_text("hidden\n")
    syscalls.mount("tmpfs", source / "sub", "tmpfs", 0, "size=1m")
    try:
        (source / "sub" / "on-the-tmpfs").write_text("tmpfs\n")
        yield source
    finally:
        syscalls.umount2(source / "sub", syscalls.MNT_DETACH)


WRITE_BOTH = ("touch /b/top 2>/dev/null && echo top-rw || echo top-ro; "
              "touch /b/sub/x 2>/dev/null && echo sub-rw || echo sub-ro; ls /b/sub")


@pytest.mark.parametrize(("bind", "expected"), [
    # Docker's default since API 1.44: read-only down the whole tree ("rro")
    ({"readonly": True}, ["top-ro", "sub-ro", "on-the-tmpfs"]),
    ({"readonly": True, "readonly_depth": READONLY_FORCE_RECURSIVE}, ["top-ro", "sub-ro", "on-the-tmpfs"]),
    # ReadOnlyNonRecursive: the top mount only, the submount stays writable (Docker before 1.44)
    ({"readonly": True, "readonly_depth": READONLY_TOP}, ["top-ro", "sub-rw", "on-the-tmpfs", "x"]),
    # NonRecursive: the submount does not come along; what the tmpfs covers on the host shows
    ({"readonly": True, "recursive": False}, ["top-ro", "sub-ro", "under-the-tmpfs"]),
    ({"recursive": False}, ["top-rw", "sub-rw", "under-the-tmpfs", "x"]),
    ({}, ["top-rw", "sub-rw", "on-the-tmpfs", "x"]),
])
def test_read_only_bind_depth_with_a_host_submount(tmp_path: Path, busybox_rootfs: Path, source_with_submount: Path,
                                                  bind: dict, expected: list[str]) -> None:
    result = run(tmp_path, busybox_rootfs, WRITE_BOTH, mounts=[BindMount(source_with_submount, "/b", **bind)])
    assert result.code == 0, result.err
    assert result.out.split() == expected
    assert (source_with_submount / "top").exists() == ("top-rw" in expected)
    # the host's tmpfs got the write only where it was the container's /b/sub (a non-recursive
    # bind wrote to the directory it covers on the host)
    assert (source_with_submount / "sub" / "x").exists() == ("sub-rw" in expected and bind.get("recursive", True))


def _spawn_without_mount_setattr(spec: ProcessSpec) -> tuple[int, str]:
    """Run `spec` from a child whose seccomp filter fails mount_setattr(2) with ENOSYS, as a
    kernel before 5.12 does (the filter is inherited by the container's setup): its exit status
    and its output, or the error spawn_container raised."""
    import json

    from engine.kernel import syscalls
    from engine.sandbox import security
    from engine.sandbox.seccomp import profile_filter

    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mount_setattr"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    program = profile_filter(json.dumps(profile), security.capabilities_for())
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code, text = 1, ""
        try:
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
            security.install_seccomp([], program)
            result = run_spec(spec)
            code, text = result.code, result.out
        except DockuiError as exc:
            code, text = 125, str(exc)
        finally:
            os.write(report_w, json.dumps([code, text]).encode())
            os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r, "rb") as report:
        found = report.read()
    os.waitpid(pid, 0)
    code, text = json.loads(found)
    return code, text


def test_without_mount_setattr_read_only_falls_back_to_the_top_mount(tmp_path: Path, busybox_rootfs: Path,
                                                                     source_with_submount: Path) -> None:
    """A kernel without mount_setattr: Docker's "ro" instead of "rro", or its error when forced."""
    spec = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", WRITE_BOTH],
                     mounts=[BindMount(source_with_submount, "/b", readonly=True)])
    assert _spawn_without_mount_setattr(spec) == (0, "top-ro\nsub-rw\non-the-tmpfs\nx\n")
    forced = make_spec(tmp_path, busybox_rootfs, ["sh", "-c", WRITE_BOTH], name="forced",
                       mounts=[BindMount(source_with_submount, "/b", readonly=True,
                                         readonly_depth=READONLY_FORCE_RECURSIVE)])
    code, text = _spawn_without_mount_setattr(forced)
    assert code == 125 and "rro is not supported" in text and "kernel is older than 5.12" in text, text
