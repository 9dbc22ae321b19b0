"""Docker's seccomp profile JSON, read into typed values and resolved for one container.

A profile is what `--security-opt seccomp=<file>` gives (moby profiles/seccomp: `defaultAction`,
`defaultErrnoRet`, `architectures` or `archMap`, `syscalls[]` with `names`/`name`, `action`,
`errnoRet`, `args[]`, `includes`/`excludes` on `caps`, `arches`, `minKernel`). `parse_profile`
checks everything that does not depend on the container (actions, operators, argument indexes,
types, architecture names) so a bad profile is refused at create time with one line; `resolve`
then applies moby's `setupSeccomp` rules for the container's capabilities, this host's
architecture ("amd64") and kernel version.

Invariant: a Profile only holds values the compiler can turn into BPF; every refusal is an
InvalidArgument whose message names the JSON path of the offending value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from engine.errors import InvalidArgument

# libseccomp's action names -> SECCOMP_RET_* (errno/data added by the compiler).
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,  # = KILL_THREAD
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
REFUSED_ACTIONS = {"SCMP_ACT_NOTIFY": "needs a seccomp agent listening on a socket (listenerPath), which dockui has not"}
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
# The ABIs a filter on an x86_64 kernel can meet. Other SCMP_ARCH_* names are valid profile
# content (Docker's default lists arm64's) but no process of this kernel ever has them.
NATIVE_ARCH = "SCMP_ARCH_X86_64"
X86_ARCHES = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
KNOWN_ARCHES = (*X86_ARCHES, "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
                "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
                "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64")
GO_ARCH = "amd64"  # what moby compares includes/excludes `arches` with (its runtime.GOARCH)
EPERM = 1
MAX_ARGS = 6
MAX_ERRNO = 0xFFFF  # SECCOMP_RET_DATA is 16 bits
U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Action:
    """A rule's outcome: the libseccomp name and the errno (ERRNO) or message (TRACE) it carries."""

    name: str
    data: int = 0

    def ret(self) -> int:
        """The filter's return value (SECCOMP_RET_* | data)."""
        base = ACTIONS[self.name]
        if self.name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
            return base | self.data
        return base

    @property
    def permissive(self) -> bool:
        """runc's isAllowAction: no ENOSYS stub for a profile that lets unknown calls through."""
        return self.name in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


@dataclass(frozen=True)
class ArgCondition:
    """args[]: the 64-bit argument `index` compared with `value` (MASKED_EQ: (arg & value) == value_two)."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Condition:
    """includes/excludes: capabilities (all needed / any excludes), Go arch names, a minimum kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    """One entry of `syscalls[]` (`name` folded into `names`)."""

    names: tuple[str, ...]
    action: Action
    args: tuple[ArgCondition, ...] = ()
    includes: Condition | None = None
    excludes: Condition | None = None


@dataclass(frozen=True)
class Profile:
    """A whole profile, before the container's capabilities and the host are known."""

    default: Action
    architectures: tuple[str, ...]  # after archMap expansion, as written
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Resolved:
    """The profile for one container: the rules that apply to it, the ABIs the filter covers."""

    default: Action
    architectures: tuple[str, ...]
    rules: tuple[Rule, ...]


def parse_profile(text: str) -> Profile | None:
    """The profile in `text` (JSON); None for one with no defaultAction and no syscalls, which
    Docker takes as "no filter" (moby setupSeccomp). InvalidArgument with the reason otherwise."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("Decoding seccomp profile failed: the profile must be a JSON object")
    if _get(data, "", "flags", list) or _get(data, "", "listenerPath", str):
        raise InvalidArgument("seccomp profile: 'flags' and 'listenerPath' are not supported by dockui")
    rules_data = _get(data, "", "syscalls", list) or []
    default_name = _get(data, "", "defaultAction", str) or ""
    if not default_name and not rules_data:
        return None
    if not default_name:
        raise InvalidArgument("seccomp profile: defaultAction is missing")
    default = _action("defaultAction", default_name, _errno(data, "", "defaultErrnoRet"))
    rules = tuple(_rule(f"syscalls[{i}]", item) for i, item in enumerate(rules_data))
    return Profile(default, _architectures(data), rules)


def resolve(profile: Profile, caps: list[str] | tuple[str, ...], kernel: tuple[int, int] | None = None) -> Resolved:
    """moby's setupSeccomp for a container holding `caps` (its bounding set) on this host."""
    held = set(caps)
    version = kernel if kernel is not None else kernel_version()
    rules = tuple(rule for rule in profile.rules if _applies(rule, held, version))
    # libseccomp's filters always cover the native ABI; the profile adds others (i386, x32)
    arches = tuple(dict.fromkeys((NATIVE_ARCH, *(a for a in profile.architectures if a in X86_ARCHES))))
    return Resolved(profile.default, arches, rules)


def kernel_version() -> tuple[int, int]:
    """(kernel, major) of the running kernel, e.g. (6, 1) for 6.1.0-13-amd64."""
    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1].split("-")[0] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def _applies(rule: Rule, held: set[str], kernel: tuple[int, int]) -> bool:
    ex, inc = rule.excludes, rule.includes
    if ex is not None:
        if GO_ARCH in ex.arches or any(c in held for c in ex.caps):
            return False
        if ex.min_kernel is not None and kernel >= ex.min_kernel:
            return False
    if inc is not None:
        if inc.arches and GO_ARCH not in inc.arches:
            return False
        if any(c not in held for c in inc.caps):
            return False
        if inc.min_kernel is not None and kernel < inc.min_kernel:
            return False
    return True


def _get(data: dict, where: str, key: str, kind: type) -> object:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {list: "a list", str: "a string", int: "an integer", dict: "an object"}[kind]
        raise InvalidArgument(f"seccomp profile: {where}{'.' if where else ''}{key}: expected {expected}")
    return value


def _strings(data: dict, where: str, key: str) -> tuple[str, ...]:
    items = _get(data, where, key, list) or []
    if not all(isinstance(item, str) for item in items):
        raise InvalidArgument(f"seccomp profile: {where}.{key}: expected a list of strings")
    return tuple(items)


def _uint(data: dict, where: str, key: str, limit: int) -> int | None:
    value = _get(data, where, key, int)
    if value is not None and not 0 <= value <= limit:
        raise InvalidArgument(f"seccomp profile: {where}{'.' if where else ''}{key}: {value} is out of range (0-{limit})")
    return value


def _errno(data: dict, where: str, key: str) -> int | None:
    return _uint(data, where, key, MAX_ERRNO)


def _action(where: str, name: str, errno: int | None) -> Action:
    if name in REFUSED_ACTIONS:
        raise InvalidArgument(f"seccomp profile: {where}: {name} {REFUSED_ACTIONS[name]}")
    if name not in ACTIONS:
        raise InvalidArgument(f"seccomp profile: {where}: unknown action {name!r}")
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return Action(name, EPERM if errno is None else errno)
    return Action(name)  # runc ignores errnoRet for the other actions


def _rule(where: str, item: object) -> Rule:
    if not isinstance(item, dict):
        raise InvalidArgument(f"seccomp profile: {where}: expected an object")
    name = _get(item, where, "name", str)
    names = _strings(item, where, "names")
    if name and names:
        raise InvalidArgument(f"seccomp profile: {where}: both 'name' and 'names' are specified, use either 'name' or 'names'")
    action = _action(f"{where}.action", _get(item, where, "action", str) or "", _errno(item, where, "errnoRet"))
    args = tuple(_arg(f"{where}.args[{i}]", arg) for i, arg in enumerate(_get(item, where, "args", list) or []))
    return Rule((name,) if name else names, action, args,
                _condition(f"{where}.includes", _get(item, where, "includes", dict)),
                _condition(f"{where}.excludes", _get(item, where, "excludes", dict)))


def _arg(where: str, item: object) -> ArgCondition:
    if not isinstance(item, dict):
        raise InvalidArgument(f"seccomp profile: {where}: expected an object")
    index = _uint(item, where, "index", MAX_ARGS - 1)
    op = _get(item, where, "op", str)
    if op not in OPERATORS:
        raise InvalidArgument(f"seccomp profile: {where}.op: unknown operator {op!r}")
    return ArgCondition(index or 0, op, _uint(item, where, "value", U64) or 0, _uint(item, where, "valueTwo", U64) or 0)


def _condition(where: str, item: dict | None) -> Condition | None:
    if item is None:
        return None
    # caps are compared as written, as moby does ("CAP_SYS_ADMIN", never "sys_admin")
    return Condition(_strings(item, where, "caps"), _strings(item, where, "arches"), _min_kernel(where, item))


def _min_kernel(where: str, item: dict) -> tuple[int, int] | None:
    text = _get(item, where, "minKernel", str)
    if not text:
        return None
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts == ["0", "0"]:
        raise InvalidArgument(f'seccomp profile: {where}.minKernel: invalid kernel version {text!r}, expected "<kernel>.<major>"')
    return int(parts[0]), int(parts[1])


def _architectures(data: dict) -> tuple[str, ...]:
    plain = _strings(data, "", "architectures")
    mapped = _get(data, "", "archMap", list) or []
    if plain and mapped:
        raise InvalidArgument("seccomp profile: both 'architectures' and 'archMap' are specified, use either "
                              "'architectures' or 'archMap'")
    arches = list(plain)
    for i, entry in enumerate(mapped):
        where = f"archMap[{i}]"
        if not isinstance(entry, dict):
            raise InvalidArgument(f"seccomp profile: {where}: expected an object")
        main = _get(entry, where, "architecture", str) or ""
        subs = _strings(entry, where, "subArchitectures")
        for arch in (main, *subs):
            _check_arch(where, arch)
        if main == NATIVE_ARCH and not arches:  # moby keeps the native entry only
            arches = [main, *subs]
    for arch in plain:
        _check_arch("architectures", arch)
    return tuple(dict.fromkeys(arches))


def _check_arch(where: str, arch: str) -> None:
    if arch not in KNOWN_ARCHES:
        raise InvalidArgument(f"seccomp profile: {where}: unknown architecture {arch!r}")
