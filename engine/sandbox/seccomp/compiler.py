"""A resolved seccomp profile compiled to the classic BPF program the kernel runs on every syscall.

Layout (what libseccomp and runc's ENOSYS stub make, written out by hand):

    ld  arch                                 ; seccomp_data.arch
    jeq AUDIT_ARCH_X86_64 / ja <x86_64>      ; one pair per ABI the profile covers
    jeq AUDIT_ARCH_I386   / ja <i386>
    ret KILL_THREAD                          ; libseccomp's bad-arch action
  <x86_64>: ld nr ; a binary search over the whole 32-bit number line ...
  <i386>:   ld nr ; ... one per AUDIT_ARCH (x32 shares x86_64's, numbered from 0x40000000)

Each ABI's number line is cut into segments that behave the same: one per syscall with a rule,
the gaps between them (the default action), and everything above the highest syscall the profile
names (ENOSYS, runc's stub, so libc falls back from calls newer than the profile; not for a
permissive default). Adjacent segments with the same code are merged, so an allow-list of ~370
calls is ~60 segments. A balanced tree of `jge` finds the segment in ~log2(segments) steps; a
segment's code is a `ret`, or its argument rules then its fallback `ret`. That keeps the program
small (Docker's default: see docs/isolation.md) and each syscall's cost logarithmic, not linear.

Jumps: a conditional jump has 8-bit offsets. The tree jumps over its left half with `jge` when that
half is under 256 instructions, else with `jge` + `ja` (32-bit offset); argument rules only ever jump
within one rule (at most 6 conditions), so no offset overflows. `assemble` checks both limits:
offsets, and the kernel's BPF_MAXINSNS (4096): a bigger program is refused with one line.

Rule semantics (runc + libseccomp): names this ABI does not have are skipped; a rule whose action
is the default action is dropped; a rule with several conditions on the same argument becomes one
rule per condition (runc's fallback); per syscall the rules with arguments are tried in profile
order (the first whose conditions all hold decides), then the last unconditional rule, then the
default action. Arguments are compared as unsigned 64-bit values, high word first (seccomp_data
keeps each argument as two little-endian 32-bit words).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from engine.errors import InvalidArgument
from engine.sandbox.seccomp import syscall_tables
from engine.sandbox.seccomp.profile import Action, ArgCondition, Resolved, Rule

Instruction = tuple[int, int, int, int]  # struct sock_filter: code, jt, jf, k

LD_W_ABS, JA, JEQ, JGT, JGE, RET, AND_K = 0x20, 0x05, 0x15, 0x25, 0x35, 0x06, 0x54
OFF_NR, OFF_ARCH, OFF_ARGS = 0, 4, 16
AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
X32_SYSCALL_BIT = 0x40000000
NUMBER_LINE_END = 1 << 32
BPF_MAXINSNS = 4096
RET_KILL_THREAD = 0x00000000
ENOSYS = 38
ENOSYS_ACTION = Action("SCMP_ACT_ERRNO", ENOSYS)
_KILL: Instruction = (RET, 0, 0, RET_KILL_THREAD)


@dataclass(frozen=True)
class Abi:
    """One system call ABI: its numbers and where they sit on its AUDIT_ARCH's number line."""

    arch: str
    audit_arch: int
    table: dict[str, int]
    first: int  # the ABI's numbers are first + table value
    end: int  # exclusive end of its part of the number line


ABIS = {
    "SCMP_ARCH_X86_64": Abi("SCMP_ARCH_X86_64", AUDIT_ARCH_X86_64, syscall_tables.X86_64, 0, X32_SYSCALL_BIT),
    "SCMP_ARCH_X32": Abi("SCMP_ARCH_X32", AUDIT_ARCH_X86_64, syscall_tables.X32, X32_SYSCALL_BIT, NUMBER_LINE_END),
    "SCMP_ARCH_X86": Abi("SCMP_ARCH_X86", AUDIT_ARCH_I386, syscall_tables.I386, 0, NUMBER_LINE_END),
}


@dataclass
class _Plan:
    """What one syscall does: rules with arguments (in order), then the unconditional action."""

    conditional: list[tuple[tuple[ArgCondition, ...], Action]]
    fallback: Action


@dataclass(frozen=True)
class _Segment:
    """A run of syscall numbers that all get `code`."""

    start: int  # the segment runs to the next one's start
    code: tuple[Instruction, ...]


def compile_resolved(profile: Resolved) -> list[Instruction]:
    """The whole program for a profile resolved for one container (see the module docstring)."""
    sections: list[tuple[int, list[Instruction]]] = []
    by_audit: dict[int, list[Abi]] = {}
    for arch in profile.architectures:
        abi = ABIS[arch]
        by_audit.setdefault(abi.audit_arch, []).append(abi)
    for audit_arch, abis in by_audit.items():
        segments: list[_Segment] = []
        for abi in abis:
            segments += _abi_segments(abi, profile)
        if audit_arch == AUDIT_ARCH_X86_64 and ABIS["SCMP_ARCH_X32"] not in abis:
            segments.append(_Segment(X32_SYSCALL_BIT, (_KILL,)))  # x32 numbers, no x32 in the profile
        sections.append((audit_arch, [(LD_W_ABS, 0, 0, OFF_NR), *_search(_fill(segments))]))
    return assemble(_dispatch(sections))


def assemble(program: list[Instruction]) -> list[Instruction]:
    """The program, checked against the kernel's limits (InvalidArgument if it does not fit)."""
    if len(program) > BPF_MAXINSNS:
        raise InvalidArgument(f"seccomp profile: the filter needs {len(program)} BPF instructions, "
                              f"more than the kernel's limit of {BPF_MAXINSNS}")
    for code, jt, jf, _ in program:
        assert jt <= 255 and jf <= 255, (code, jt, jf)  # the emitters never make a longer short jump
    return program


def to_bytes(program: list[Instruction]) -> bytes:
    """struct sock_filter[] as prctl(PR_SET_SECCOMP) takes it."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in program)


# ---- per ABI: rules -> segments ---------------------------------------------------------------


def _abi_segments(abi: Abi, profile: Resolved) -> list[_Segment]:
    plans: dict[int, _Plan] = {}
    highest = -1
    for rule in profile.rules:
        for name in rule.names:
            number = abi.table.get(name)
            if number is None:
                continue  # a syscall this ABI does not have (runc skips unknown names)
            highest = max(highest, number)
            if rule.action == profile.default:
                continue  # runc drops rules that only repeat the default
            plan = plans.setdefault(number, _Plan([], profile.default))
            for conditions in _split(rule):
                if conditions:
                    plan.conditional.append((conditions, rule.action))
                else:
                    plan.fallback = rule.action
    default = (_ret(profile.default),)
    segments = [_Segment(abi.first, default)]
    for number in sorted(plans):
        segments.append(_Segment(abi.first + number, _syscall_code(plans[number])))
        segments.append(_Segment(abi.first + number + 1, default))
    if highest >= 0 and not profile.default.permissive and profile.default != ENOSYS_ACTION:
        segments.append(_Segment(abi.first + highest + 1, (_ret(ENOSYS_ACTION),)))  # runc's ENOSYS stub
    return [s for s in segments if s.start < abi.end]


def _split(rule: Rule) -> list[tuple[ArgCondition, ...]]:
    """runc: conditions on distinct arguments are one rule (AND); two on the same argument make
    one rule per condition (OR)."""
    indexes = [arg.index for arg in rule.args]
    if len(set(indexes)) == len(indexes):
        return [rule.args]
    return [(arg,) for arg in rule.args]


def _fill(segments: list[_Segment]) -> list[_Segment]:
    """Sorted, the number line covered from 0 (a part no ABI owns gets the bad-arch kill), a later
    segment winning a shared start (a syscall over the gap after its neighbour), neighbours with the
    same code merged."""
    starts: dict[int, tuple[Instruction, ...]] = {}
    for segment in sorted(segments, key=lambda s: s.start):
        starts[segment.start] = segment.code
    if 0 not in starts:
        starts[0] = (_KILL,)
    merged: list[_Segment] = []
    for start in sorted(starts):
        if not merged or merged[-1].code != starts[start]:
            merged.append(_Segment(start, starts[start]))
    return merged


def _search(segments: list[_Segment]) -> list[Instruction]:
    """A balanced binary search on the syscall number (in A) over contiguous segments."""
    if len(segments) == 1:
        return list(segments[0].code)
    middle = len(segments) // 2
    left, right = _search(segments[:middle]), _search(segments[middle:])
    boundary = segments[middle].start
    if len(left) <= 255:
        return [(JGE, len(left), 0, boundary), *left, *right]
    return [(JGE, 0, 1, boundary), (JA, 0, 0, len(left)), *left, *right]


def _dispatch(sections: list[tuple[int, list[Instruction]]]) -> list[Instruction]:
    """ld arch; for each arch: jeq + ja to its section; bad arch: kill; the sections."""
    program: list[Instruction] = [(LD_W_ABS, 0, 0, OFF_ARCH)]
    head = 2 * len(sections) + 1
    before = 0
    for i, (audit_arch, code) in enumerate(sections):
        after_ja = head - (2 * i + 2)  # instructions after this ja up to the first section
        program += [(JEQ, 0, 1, audit_arch), (JA, 0, 0, after_ja + before)]
        before += len(code)
    program.append(_KILL)
    for _, code in sections:
        program += code
    return program


# ---- one syscall: its argument rules ----------------------------------------------------------


def _ret(action: Action) -> Instruction:
    return (RET, 0, 0, action.ret())


def _syscall_code(plan: _Plan) -> tuple[Instruction, ...]:
    code: list[Instruction] = []
    for conditions, action in plan.conditional:
        code += _all_of(conditions, action)
    code.append(_ret(plan.fallback))
    return tuple(code)


def _all_of(conditions: tuple[ArgCondition, ...], action: Action) -> list[Instruction]:
    """Tests that fall through while they hold, `ret action` after the last; a failing test jumps
    past the `ret` (to the next rule or the fallback). Built from the end so each test knows how
    far its failure jumps."""
    code: list[Instruction] = [_ret(action)]
    for condition in reversed(conditions):
        code = _compare(condition, len(code)) + code
    return code


def _compare(cond: ArgCondition, fail: int) -> list[Instruction]:
    """Unsigned 64-bit `arg <op> value` on the two 32-bit words; holds: fall through past the
    returned code; fails: skip `fail` more instructions after it."""
    lo_off = OFF_ARGS + 8 * cond.index
    hi_off = lo_off + 4
    hi, lo = cond.value >> 32, cond.value & 0xFFFFFFFF
    ld_hi, ld_lo = (LD_W_ABS, 0, 0, hi_off), (LD_W_ABS, 0, 0, lo_off)
    op = cond.op
    if op == "SCMP_CMP_EQ":
        return [ld_hi, (JEQ, 0, fail + 2, hi), ld_lo, (JEQ, 0, fail, lo)]
    if op == "SCMP_CMP_NE":
        return [ld_hi, (JEQ, 0, 2, hi), ld_lo, (JEQ, fail, 0, lo)]
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):  # hi > HI, or hi == HI and lo >(=) LO
        low_test = JGT if op == "SCMP_CMP_GT" else JGE
        return [ld_hi, (JGT, 3, 0, hi), (JEQ, 0, fail + 2, hi), ld_lo, (low_test, 0, fail, lo)]
    if op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):  # hi < HI, or hi == HI and lo <(=) LO
        low_fail = JGE if op == "SCMP_CMP_LT" else JGT
        return [ld_hi, (JGT, fail + 3, 0, hi), (JEQ, 0, 2, hi), ld_lo, (low_fail, fail, 0, lo)]
    if op == "SCMP_CMP_MASKED_EQ":  # (arg & value) == valueTwo
        want_hi, want_lo = cond.value_two >> 32, cond.value_two & 0xFFFFFFFF
        return [ld_hi, (AND_K, 0, 0, hi), (JEQ, 0, fail + 3, want_hi),
                ld_lo, (AND_K, 0, 0, lo), (JEQ, 0, fail, want_lo)]
    raise InvalidArgument(f"seccomp profile: unknown operator {op!r}")
