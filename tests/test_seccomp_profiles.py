"""`--security-opt seccomp=<profile.json>` (issue 11): the syscall tables, the profile reader, the BPF
compiler (each program run by a small classic-BPF interpreter, and on the real kernel), and the profile
applied to `run`, `exec`, health probes and the Engine API through the docker CLI."""

from __future__ import annotations

import ctypes
import json
import os
import platform
from pathlib import Path

import pytest

from engine.errors import InvalidArgument
from engine.sandbox import seccomp, security
from engine.sandbox.seccomp import compiler, generate_tables, syscall_tables
from engine.sandbox.security import DEFAULT_CAPABILITIES
from tests.fixtures.seccomp_bpf import builtin_shaped_profile, run_bpf
from tests.service_support import Service, service_fixture  # noqa: F401 - the `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture, wait_until  # noqa: F401 - the `engine` fixture
from tests.test_process_support import make_spec, nothing_left, run_spec  # noqa: F401 - nothing_left is a fixture

FIXTURES = Path(__file__).parent / "fixtures" / "seccomp"
DENY_MKDIR = FIXTURES / "deny-mkdir.json"
ALLOW_LIST = FIXTURES / "busybox-allowlist.json"
X86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp tables are x86_64 only")
pytestmark = X86_64

ALLOW, KILL, TRAP = 0x7FFF0000, 0x00000000, 0x00030000
ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
NR = syscall_tables.X86_64
X32_BIT = 0x40000000


def errno_ret(number: int) -> int:
    return ERRNO | number


def program_of(profile: dict, caps: tuple[str, ...] | list[str] = DEFAULT_CAPABILITIES) -> list:
    program = seccomp.profile_program(json.dumps(profile), caps)
    assert program is not None
    return program


# ---- the tables ------------------------------------------------------------------------------------


@pytest.mark.skipif(not (generate_tables.DEFAULT_INCLUDE / "unistd_64.h").exists(),
                    reason="the kernel headers are not installed (apt-get install libc6-dev)")
def test_tables_match_the_kernel_headers() -> None:
    tables = generate_tables.read_tables()
    assert tables["X86_64"] == syscall_tables.X86_64
    assert tables["I386"] == syscall_tables.I386
    assert tables["X32"] == syscall_tables.X32
    # spot checks everyone knows, so a parser that read nothing cannot pass
    assert (NR["read"], NR["mkdir"], NR["personality"], NR["clone3"]) == (0, 83, 135, 435)
    assert (syscall_tables.I386["mkdir"], syscall_tables.X32["rt_sigaction"]) == (39, 512)


# ---- the compiler, decision by decision ------------------------------------------------------------


def test_deny_rule_over_an_allow_default() -> None:
    program = program_of(json.loads(DENY_MKDIR.read_text()))
    assert run_bpf(program, NR["mkdir"]) == errno_ret(EPERM)
    assert run_bpf(program, NR["mkdirat"]) == errno_ret(EPERM)
    for name in ("read", "write", "rmdir", "execve", "clone3"):
        assert run_bpf(program, NR[name]) == ALLOW, name
    assert run_bpf(program, 100_000) == ALLOW  # a permissive default gets no ENOSYS stub
    # No archMap/architectures: the native ABI only; i386 and x32 calls get libseccomp's bad-arch kill
    assert run_bpf(program, 39, arch=compiler.AUDIT_ARCH_I386) == KILL
    assert run_bpf(program, X32_BIT | 1) == KILL


def test_allow_list_with_its_archmap_and_stub() -> None:
    profile = json.loads(ALLOW_LIST.read_text())
    program = program_of(profile)
    assert run_bpf(program, NR["write"]) == ALLOW
    assert run_bpf(program, NR["mkdir"]) == errno_ret(EPERM)  # not listed: the default
    assert run_bpf(program, NR["clone3"]) == errno_ret(ENOSYS)
    assert run_bpf(program, NR["sched_yield"]) == ALLOW  # minKernel 3.2 holds; the unknown name is skipped
    highest = max(NR[name] for rule in profile["syscalls"] for name in rule["names"] if name in NR)
    assert run_bpf(program, NR["openat2"]) == errno_ret(EPERM)  # a gap below it: the default
    assert run_bpf(program, highest + 1) == errno_ret(ENOSYS)  # above the highest named: runc's stub
    assert run_bpf(program, 0x3FFFFFFF) == errno_ret(ENOSYS)
    # archMap gives i386 and x32 (their own numbers); arm64's entry is ignored on this host
    assert run_bpf(program, syscall_tables.I386["write"], arch=compiler.AUDIT_ARCH_I386) == ALLOW
    assert run_bpf(program, syscall_tables.I386["mkdir"], arch=compiler.AUDIT_ARCH_I386) == errno_ret(EPERM)
    assert run_bpf(program, X32_BIT | syscall_tables.X32["write"]) == ALLOW
    assert run_bpf(program, X32_BIT | syscall_tables.X32["rt_sigaction"]) == ALLOW  # x32's own 512
    assert run_bpf(program, X32_BIT | NR["mkdir"]) == errno_ret(EPERM)
    assert run_bpf(program, 1, arch=0xC00000B7) == KILL  # an ABI the filter does not cover (aarch64)
    # clone: namespace flags only with CAP_SYS_ADMIN (excludes/includes caps)
    assert run_bpf(program, NR["clone"], (0x01200011,)) == ALLOW  # fork's flags
    assert run_bpf(program, NR["clone"], (0x01200011 | 0x10000000,)) == errno_ret(EPERM)  # CLONE_NEWUSER
    admin = program_of(profile, [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert run_bpf(admin, NR["clone"], (0x10000000,)) == ALLOW


# (op, value, valueTwo) -> the Python truth for an unsigned 64-bit argument
OPERATORS = {
    "SCMP_CMP_EQ": lambda a, v, _: a == v,
    "SCMP_CMP_NE": lambda a, v, _: a != v,
    "SCMP_CMP_LT": lambda a, v, _: a < v,
    "SCMP_CMP_LE": lambda a, v, _: a <= v,
    "SCMP_CMP_GT": lambda a, v, _: a > v,
    "SCMP_CMP_GE": lambda a, v, _: a >= v,
    "SCMP_CMP_MASKED_EQ": lambda a, v, v2: a & v == v2,
}
VALUES = (0, 1, 0xFFFFFFFF, 0x1_00000000, 0x1_00000005, 0x2_00000000, 0xFFFFFFFF_FFFFFFFF)


def _probes(value: int) -> list[int]:
    """Arguments around `value` in both words: the high word one below/above with a low word that
    alone would decide the other way (a compiler that compares only one word fails these)."""
    hi, lo = value >> 32, value & 0xFFFFFFFF
    around = {value, value - 1, value + 1, 0, (1 << 64) - 1}
    for h in (hi - 1, hi, hi + 1):
        for low in (lo - 1, lo, lo + 1, 0, 0xFFFFFFFF):
            around.add(h << 32 | low & 0xFFFFFFFF)
    return sorted(a for a in around if 0 <= a < 1 << 64)


@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_64_bit_argument_comparisons(op: str) -> None:
    for value in VALUES:
        value_two = value & 0x0000000F_0000000F
        rule = {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                "args": [{"index": 3, "value": value, "valueTwo": value_two, "op": op}]}
        program = program_of({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
        for arg in _probes(value):
            want = errno_ret(99) if OPERATORS[op](arg, value, value_two) else ALLOW
            assert run_bpf(program, NR["personality"], (0, 0, 0, arg)) == want, (op, hex(value), hex(arg))


def test_conditions_and_rules_combine_as_runc_does() -> None:
    def cond(index: int, op: str, value: int) -> dict:
        return {"index": index, "value": value, "op": op}

    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        # two arguments: both must hold
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [cond(0, "SCMP_CMP_EQ", 2), cond(1, "SCMP_CMP_EQ", 1)]},
        # the same argument twice: either may hold (runc splits the rule)
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [cond(0, "SCMP_CMP_EQ", 0), cond(0, "SCMP_CMP_EQ", 8)]},
        # argument rules first, then the unconditional one
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [cond(1, "SCMP_CMP_EQ", 9)]},
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["getpid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getuid"], "action": "SCMP_ACT_ERRNO"},  # the default: dropped, as runc does
    ]}
    program = program_of(profile)
    assert run_bpf(program, NR["socket"], (2, 1)) == ALLOW
    assert run_bpf(program, NR["socket"], (2, 2)) == errno_ret(EPERM)
    assert run_bpf(program, NR["socket"], (10, 1)) == errno_ret(EPERM)
    assert [run_bpf(program, NR["personality"], (v,)) for v in (0, 8, 9)] == [ALLOW, ALLOW, errno_ret(EPERM)]
    assert run_bpf(program, NR["kill"], (1, 9)) == errno_ret(13)
    assert run_bpf(program, NR["kill"], (1, 15)) == ALLOW
    assert run_bpf(program, NR["getpid"]) == TRAP
    assert run_bpf(program, NR["gettid"]) == 0x80000000
    assert run_bpf(program, NR["getppid"]) == 0x7FFC0000
    assert run_bpf(program, NR["getuid"]) == errno_ret(EPERM)


@pytest.mark.parametrize("extra", [(), ("CAP_SYS_ADMIN",), ("CAP_SYS_TIME", "CAP_SYS_PTRACE", "CAP_BPF")])
def test_compiled_allow_list_decides_like_the_builtin_filter(extra: tuple[str, ...]) -> None:
    """Every x86_64 syscall (with the argument cases the built-in filter looks at) gets the same
    answer from the hand-written deny-list and from the compiled allow-list of the same policy."""
    caps = [*DEFAULT_CAPABILITIES, *extra]
    builtin = security.seccomp_program(caps)
    compiled = program_of(builtin_shaped_profile(), caps)
    assert len(compiled) < compiler.BPF_MAXINSNS
    for name, number in NR.items():
        for args in ((0,), (0x10000000,), (40,), (2,)):
            assert run_bpf(compiled, number, args) == run_bpf(builtin, number, args), (name, args)


def test_a_program_over_the_kernel_limit_is_refused() -> None:
    # distinct conditions per syscall (identical neighbours would be merged into one segment)
    rules = [{"names": [name], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": i, "value": number << 8 | i, "op": "SCMP_CMP_LT"} for i in range(6)]}
             for name, number in NR.items()]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    with pytest.raises(InvalidArgument, match=r"needs \d+ BPF instructions, more than the kernel's limit of 4096"):
        program_of(profile)


BAD_PROFILES = [
    ('{"defaultAction": ', "Decoding seccomp profile failed"),
    ("[]", "must be a JSON object"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}',
     "syscalls[0].action: unknown action 'SCMP_ACT_DENY'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}', "syscalls[0].args[0].op: unknown operator"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "syscalls[0].args[0].index: 6 is out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}', "syscalls[0].args[0].value: -1 is out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}',
     "both 'name' and 'names'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": []}', None),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}', "unknown architecture 'SCMP_ARCH_Z80'"),
    ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "needs a seccomp agent"),
    ('{"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}', "defaultAction is missing"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",'
     ' "includes": {"minKernel": "4"}}]}', "minKernel: invalid kernel version '4'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PROFILES)
def test_bad_profiles_are_refused_with_one_line(text: str, message: str | None) -> None:
    if message is None:  # a valid corner (an empty archMap next to architectures): accepted
        assert seccomp.check_profile(text) is not None
        return
    with pytest.raises(InvalidArgument) as caught:
        seccomp.check_profile(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_empty_profile_means_no_filter_as_docker_reads_it() -> None:
    from engine.container.options import security_options

    assert seccomp.check_profile("{}") is None
    assert security_options(["seccomp={}"]).seccomp is False
    opts = security_options([f"seccomp={DENY_MKDIR.read_text()}"])
    assert opts.seccomp and opts.seccomp_profile is not None
    assert security_options(["seccomp=builtin"]).seccomp_profile is None


def test_the_cli_sends_the_file_compacted(tmp_path: Path) -> None:
    from engine.container.options import inline_seccomp_profiles

    items = inline_seccomp_profiles(["no-new-privileges", f"seccomp={DENY_MKDIR}", "seccomp=unconfined"])
    assert items[0] == "no-new-privileges" and items[2] == "seccomp=unconfined"
    assert items[1] == "seccomp=" + json.dumps(json.loads(DENY_MKDIR.read_text()), separators=(",", ":"))
    with pytest.raises(InvalidArgument, match=r"^opening seccomp profile \(/no/such.json\) failed: No such file"):
        inline_seccomp_profiles(["seccomp=/no/such.json"])


# ---- on the real kernel ----------------------------------------------------------------------------


def _results_in_a_child(program: bytes, calls: list[tuple[int, tuple[int, ...]]]) -> list[int]:
    """Each call's errno (0: it went through) from a forked child that installed `program`."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            security.set_no_new_privs()
            security.install_seccomp([], program)
            results = []
            for number, args in calls:
                ctypes.set_errno(0)
                rc = libc.syscall(ctypes.c_long(number), *(ctypes.c_ulong(a) for a in args))
                results.append(ctypes.get_errno() if rc == -1 else 0)
            os.write(write_fd, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.root
def test_the_kernel_compares_both_words() -> None:
    """personality(0xffffffff) (a query) denied and nothing else: a 64-bit argument whose low word
    is 0xffffffff goes through, as do the neighbours; then the other operators on the kernel."""
    rule = {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
            "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]}
    text = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
    program = seccomp.profile_filter(text, DEFAULT_CAPABILITIES)
    queries = [0xFFFFFFFF, 0x1_FFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF_FFFFFFFF]
    assert _results_in_a_child(program, [(NR["personality"], (q,)) for q in queries]) == [99, 0, 0, 0]
    for op, truth in OPERATORS.items():
        value = 0x1_00000005
        rule = {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 99,
                "args": [{"index": 1, "value": value, "valueTwo": 0x1_00000004, "op": op}]}
        program = seccomp.profile_filter(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}), ())
        probes = _probes(value)
        # getpriority(PRIO_PROCESS, who): a `who` the filter lets through is looked up (ESRCH or found)
        got = _results_in_a_child(program, [(NR["getpriority"], (0, who)) for who in probes])
        want = [truth(who, value, 0x1_00000004) for who in probes]
        assert [code == 99 for code in got] == want, op


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_busybox_runs_under_an_allow_list(tmp_path: Path, busybox_rootfs: Path) -> None:
    program = seccomp.profile_filter(seccomp.read_profile_file(str(ALLOW_LIST)), DEFAULT_CAPABILITIES)
    script = ("ls / >/dev/null && echo listed; cat /etc/passwd | wc -l; grep Seccomp: /proc/self/status; "
              "mkdir /made 2>&1; unshare -U true 2>&1; echo end")
    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], seccomp_filter=program))
    lines = result.out.splitlines()
    assert lines[:3] == ["listed", "3", "Seccomp:\t2"], result
    assert "mkdir: can't create directory '/made': Operation not permitted" in lines
    assert any(line.startswith("unshare:") and "Operation not permitted" in line for line in lines), lines
    assert lines[-1] == "end"


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_a_docker_shaped_allow_list_blocks_what_the_builtin_filter_blocks(tmp_path: Path, busybox_rootfs: Path) -> None:
    """An unprivileged user namespace needs no capability: only seccomp stops `unshare -U` (as in
    tests/test_security.py for the built-in filter), here through the allow-list's missing CAP_SYS_ADMIN."""
    text = json.dumps(builtin_shaped_profile())
    script = "ls /bin/busybox && unshare -U true 2>/dev/null || echo userns-denied"
    confined = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], name="a",
                                  seccomp_filter=seccomp.profile_filter(text, DEFAULT_CAPABILITIES)))
    assert confined.out.split() == ["/bin/busybox", "userns-denied"], confined
    admin = [*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]
    allowed = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], name="b", capabilities=admin,
                                 seccomp_filter=seccomp.profile_filter(text, admin)))
    assert allowed.out.split() == ["/bin/busybox"], allowed


@pytest.mark.root
@pytest.mark.usefixtures("nothing_left")
def test_an_argument_rule_in_a_container(tmp_path: Path, busybox_rootfs: Path) -> None:
    """open/openat with O_CREAT (MASKED_EQ on the flags) refused; reading still works."""
    o_creat = 0o100
    masked = {"value": o_creat, "valueTwo": o_creat, "op": "SCMP_CMP_MASKED_EQ"}
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["open"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, **masked}]},
        {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, **masked}]},
        {"names": ["creat"], "action": "SCMP_ACT_ERRNO"},
    ]}
    program = seccomp.profile_filter(json.dumps(profile), DEFAULT_CAPABILITIES)
    script = "head -1 /etc/passwd; echo x > /tmp/new 2>&1; test -e /tmp/new || echo not-created"
    result = run_spec(make_spec(tmp_path, busybox_rootfs, ["sh", "-c", script], seccomp_filter=program))
    assert result.out.splitlines()[0] == "root:x:0:0:root:/root:/bin/sh", result
    assert "can't create /tmp/new: Operation not permitted" in result.out + result.err
    assert result.out.splitlines()[-1] == "not-created"


MKDIR_DENIED = "mkdir: can't create directory '/x': Operation not permitted"


@pytest.mark.root
def test_profile_applies_to_run_exec_and_health_probes(engine: Engine) -> None:
    result = engine.cli("run", "--rm", "--network", "none", "--security-opt", f"seccomp={DENY_MKDIR}",
                        "busybox", "mkdir", "/x")
    assert (result.returncode, result.stderr.decode().strip()) == (1, MKDIR_DENIED)
    engine.out("run", "-d", "--name", "confined", "--network", "none", "--security-opt", f"seccomp={DENY_MKDIR}",
               "--health-cmd", "mkdir /probe", "--health-interval", "0.2s", "busybox", "sleep", "60")
    opts = engine.inspect("confined")["HostConfig"]["SecurityOpt"]
    assert opts == ["seccomp=" + json.dumps(json.loads(DENY_MKDIR.read_text()), separators=(",", ":"))]
    result = engine.cli("exec", "confined", "mkdir", "/x")
    assert (result.returncode, result.stderr.decode().strip()) == (1, MKDIR_DENIED)
    assert engine.out("exec", "confined", "sh", "-c", "rmdir /tmp && echo removed") == "removed\n"
    assert engine.out("exec", "confined", "grep", "Seccomp_filters:", "/proc/self/status") == "Seccomp_filters:\t1\n"
    logged = wait_until(lambda: (engine.inspect("confined")["State"].get("Health") or {}).get("Log"), timeout=15)
    assert logged and "can't create directory '/probe': Operation not permitted" in logged[0]["Output"], logged
    engine.out("rm", "-f", "confined")
    # unconfined still means no filter at all
    assert engine.out("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox",
                      "sh", "-c", "mkdir /x && grep Seccomp: /proc/self/status") == "Seccomp:\t0\n"


@pytest.mark.root
def test_bad_profiles_create_nothing(engine: Engine, tmp_path: Path) -> None:
    cases = {
        "missing": (str(tmp_path / "missing.json"), "opening seccomp profile"),
        "bad json": ("{", "compacting json for seccomp profile"),
        "unknown action": ('{"defaultAction": "SCMP_ACT_MAYBE"}', "unknown action 'SCMP_ACT_MAYBE'"),
        "unknown op": ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": '
                       '"SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}',
                       "unknown operator 'SCMP_CMP_SOMETIMES'"),
    }
    client_side = ("missing", "bad json")  # the docker CLI's parseSecurityOpts reads the file: 125
    for what, (content, message) in cases.items():
        path = content if what == "missing" else str(tmp_path / f"{what.replace(' ', '-')}.json")
        if what != "missing":
            Path(path).write_text(content)
        for verb in ("run", "create"):
            result = engine.cli(verb, "--security-opt", f"seccomp={path}", "busybox", "true")
            err = result.stderr.decode()
            # the profile itself is the engine's to refuse: create returns that plainly (1), run wraps it (125)
            assert result.returncode == (125 if verb == "run" or what in client_side else 1), (what, verb, err)
            assert message in err and err.count("\n") == 1 and "Traceback" not in err, (what, verb, err)
    assert engine.out("ps", "-aq") == ""


# The exit status says the mkdir failed with EPERM (42) without relying on the attached output.
MKDIR_EPERM = ("sh", "-c", "mkdir /x 2>&1 | grep -q 'Operation not permitted' && exit 42")


@pytest.mark.root
def test_the_docker_cli_sends_the_profile_to_the_service(service: Service, tmp_path: Path) -> None:
    result = service.docker("run", "--rm", "--network", "none", "--security-opt", f"seccomp={DENY_MKDIR}",
                            "busybox", *MKDIR_EPERM)
    assert result.returncode == 42, result
    assert service.docker("run", "--rm", "--network", "none", "busybox", *MKDIR_EPERM).returncode == 1
    service.docker_out("run", "-d", "--name", "api-confined", "--network", "none",
                       "--security-opt", f"seccomp={DENY_MKDIR}", "busybox", "sleep", "60")
    # The exec leaves a mark when its mkdir got EPERM (docker exec's exit status is the service's
    # exec inspect, tested elsewhere), read back with dockui's own exec.
    service.docker("exec", "api-confined", "sh", "-c", "mkdir /x 2>&1 | grep -q 'Operation not permitted' && touch /tmp/ok")
    assert service.engine.out("exec", "api-confined", "ls", "/tmp") == "ok\n"
    opts = service.docker_out("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "api-confined")
    assert json.loads(opts) == ["seccomp=" + json.dumps(json.loads(DENY_MKDIR.read_text()), separators=(",", ":"))]
    service.docker_out("rm", "-f", "api-confined")
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_MAYBE"}')
    result = service.docker("run", "--rm", "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert result.returncode == 125 and "unknown action 'SCMP_ACT_MAYBE'" in result.stderr.decode(), result
    assert service.docker_out("ps", "-aq") == ""
