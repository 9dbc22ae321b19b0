"""Capabilities and no_new_privs: Docker's rules (pure) and what the kernel really gives (root)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.sandbox.security import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    DEFAULT_DEVICE_RULES,
    all_capabilities,
    capabilities_for,
    capability_mask,
    names_from_mask,
    normalize_capability,
    own_bounding_mask,
)
from tests.test_process_support import (  # noqa: F401 - nothing_left is a fixture
    host_mounts_under,
    nothing_left,
    processes_rooted_under,
    run,
    status_field,
)

# Docker's documented default: `docker run busybox grep CapEff /proc/self/status`.
DOCKER_DEFAULT_CAPEFF = 0x00000000A80425FB


def test_default_set_is_dockers() -> None:
    assert capability_mask(DEFAULT_CAPABILITIES) == DOCKER_DEFAULT_CAPEFF
    assert len(DEFAULT_CAPABILITIES) == 14
    assert capabilities_for() == list(DEFAULT_CAPABILITIES)


@pytest.mark.parametrize(
    ("add", "drop", "privileged", "expected"),
    [
        (["NET_ADMIN"], [], False, [*DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"]),
        (["cap_sys_ptrace"], ["chown", "KILL"], False,
         [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_KILL")] + ["CAP_SYS_PTRACE"]),
        ([], ["ALL"], False, []),
        (["NET_BIND_SERVICE"], ["all"], False, ["CAP_NET_BIND_SERVICE"]),
        (["CHOWN"], ["CHOWN"], False, list(DEFAULT_CAPABILITIES)),  # an add wins over a drop
        (["ALL"], ["SYS_ADMIN"], False, [c for c in all_capabilities() if c != "CAP_SYS_ADMIN"]),
        ([], [], True, all_capabilities()),
        (["NET_ADMIN"], ["ALL"], True, all_capabilities()),
    ],
)
def test_cap_add_drop_rules(add, drop, privileged, expected) -> None:
    assert sorted(capabilities_for(add, drop, privileged)) == sorted(expected)


@pytest.mark.parametrize("bad", ["NET_ADMINN", "CAP_", "", "sys admin"])
def test_unknown_capability_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        capabilities_for([bad])


def test_normalize_and_masks_round_trip() -> None:
    assert normalize_capability(" net_raw ") == "CAP_NET_RAW"
    assert normalize_capability("Cap_Kill") == "CAP_KILL"
    assert names_from_mask(capability_mask(DEFAULT_CAPABILITIES)) == sorted(
        DEFAULT_CAPABILITIES, key=CAPABILITIES.__getitem__
    )


def test_device_rules_are_runcs_allow_list() -> None:
    lines = [rule.v1_line() for rule in DEFAULT_DEVICE_RULES]
    assert lines[:2] == ["c *:* m", "b *:* m"]
    for node in ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm",
                 "c 136:* rwm"):
        assert node in lines
    assert not any(line.startswith("b ") and "rw" in line for line in lines)  # no block device access
    assert all(tuple(rule) == (rule.type, rule.major, rule.minor, rule.access) for rule in DEFAULT_DEVICE_RULES)


# ---- on the real kernel ----------------------------------------------------------------------------


STATUS = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_default_container_has_dockers_caps_and_no_new_privs(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, STATUS)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(result.out, field), 16) == DOCKER_DEFAULT_CAPEFF, field
    assert int(status_field(result.out, "CapInh"), 16) == 0
    assert int(status_field(result.out, "CapAmb"), 16) == 0
    assert status_field(result.out, "NoNewPrivs") == "1"


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_caps_really_restrict(tmp_path: Path, busybox_rootfs: Path) -> None:
    """Without CAP_SYS_ADMIN mount fails; with cap-drop ALL even chown of another's file fails."""
    default = run(tmp_path, busybox_rootfs, "mount -t tmpfs t /mnt 2>/dev/null || echo no-mount", name="a")
    assert default.out.strip() == "no-mount"
    dropped = run(tmp_path, busybox_rootfs, "touch /tmp/f && chown 1000 /tmp/f 2>/dev/null || echo no-chown",
                  name="b", capabilities=capabilities_for([], ["ALL"]))
    assert dropped.out.strip() == "no-chown"
    added = run(tmp_path, busybox_rootfs, STATUS, name="c", capabilities=capabilities_for(["NET_ADMIN"], ["MKNOD"]))
    expected = (DOCKER_DEFAULT_CAPEFF | 1 << CAPABILITIES["CAP_NET_ADMIN"]) & ~(1 << CAPABILITIES["CAP_MKNOD"])
    assert int(status_field(added.out, "CapEff"), 16) == expected


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_privileged_gets_what_the_engine_holds(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, STATUS + "; wc -c < /proc/timer_list", privileged=True)
    assert int(status_field(result.out, "CapEff"), 16) == own_bounding_mask()
    assert int(result.out.split()[-1]) > 0  # nothing masked


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_no_new_privs_can_be_turned_off(tmp_path: Path, busybox_rootfs: Path) -> None:
    result = run(tmp_path, busybox_rootfs, STATUS, no_new_privs=False)
    assert status_field(result.out, "NoNewPrivs") == "0"


def test_seccomp_rules_follow_caps() -> None:
    from engine.sandbox.security import denied_syscalls, seccomp_program

    default = denied_syscalls(DEFAULT_CAPABILITIES)
    for name in ("keyctl", "add_key", "kexec_load", "mount", "unshare", "setns", "bpf", "reboot", "io_uring_setup"):
        assert name in default
    assert "chroot" not in default  # CAP_SYS_CHROOT is a default cap
    admin = denied_syscalls([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert "mount" not in admin and "unshare" not in admin and "keyctl" in admin
    program = seccomp_program(DEFAULT_CAPABILITIES)
    if program is not None:
        assert program[-1] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
        assert len(program) < 4096  # BPF_MAXINSNS


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp tables are x86_64 only (docs/isolation.md)")
def test_seccomp_blocks_what_docker_blocks(tmp_path: Path, busybox_rootfs: Path) -> None:
    """An unprivileged user namespace needs no capability: only seccomp stops `unshare -U`."""
    script = "grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo userns-allowed; echo end"
    confined = run(tmp_path, busybox_rootfs, script, name="a")
    assert confined.out.split() == ["Seccomp:", "2", "end"]
    unconfined = run(tmp_path, busybox_rootfs, script, name="b", seccomp=False)
    assert unconfined.out.split() == ["Seccomp:", "0", "userns-allowed", "end"]
