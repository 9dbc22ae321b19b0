"""Writes engine/sandbox/seccomp/syscall_tables.py from the kernel's uapi headers (libc6-dev).

    .venv/bin/python -m engine.sandbox.seccomp.generate_tables [INCLUDE_DIR]

The x86 family has three system call ABIs, each with its own numbers: x86_64 (`unistd_64.h`),
i386 (`unistd_32.h`) and x32 (`unistd_x32.h`, numbered `__X32_SYSCALL_BIT + n`; the table keeps
`n` and the compiler adds the bit). The generated module is checked in: the engine never reads a
header at run time, and tests/test_seccomp_profiles.py compares the table with the headers when
they are installed, so a stale table is a failing test, not a silent gap.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DEFAULT_INCLUDE = Path("/usr/include/x86_64-linux-gnu/asm")
HEADERS = {"X86_64": "unistd_64.h", "I386": "unistd_32.h", "X32": "unistd_x32.h"}
OUTPUT = Path(__file__).with_name("syscall_tables.py")

_DEFINE = re.compile(r"^#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$")


def parse_header(text: str) -> dict[str, int]:
    """`#define __NR_name N` (or `(__X32_SYSCALL_BIT + N)`) lines -> {name: N}."""
    table: dict[str, int] = {}
    for line in text.splitlines():
        match = _DEFINE.match(line.strip())
        if match:
            table[match.group(1)] = int(match.group(2) or match.group(3))
    return table


def read_tables(include: Path = DEFAULT_INCLUDE) -> dict[str, dict[str, int]]:
    return {abi: parse_header((include / header).read_text()) for abi, header in HEADERS.items()}


def render(tables: dict[str, dict[str, int]], source: Path) -> str:
    lines = [
        f'"""System call numbers of the x86 ABIs, generated from {source}/unistd_{{64,32,x32}}.h',
        "by engine/sandbox/seccomp/generate_tables.py (do not edit by hand; run it again).",
        "",
        "X32 numbers are without __X32_SYSCALL_BIT (0x40000000): the seccomp compiler adds it.",
        '"""',
        "",
    ]
    for abi, table in tables.items():
        lines.append(f"{abi}: dict[str, int] = {{")
        for name, number in sorted(table.items(), key=lambda kv: (kv[1], kv[0])):
            lines.append(f'    "{name}": {number},')
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    include = Path(argv[0]) if argv else DEFAULT_INCLUDE
    OUTPUT.write_text(render(read_tables(include), include))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
