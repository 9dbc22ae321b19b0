"""A platform specifier (`linux`, `linux/arm64`, `amd64`) as moby's router reads one: containerd's
platforms.Parse, its checks and words, for the endpoints that take `platform` (import, build).

Invariant: a specifier is refused with containerd's message (a 400) or read into its OS and
architecture, normalised (`macos` is darwin, `x86_64` amd64); which platforms an endpoint then
supports is the endpoint's rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

KNOWN_OS = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
            "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"}
OS_ALIASES = {"macos": "darwin"}
ARCH_ALIASES = {"i386": "386", "x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}
KNOWN_ARCH = {"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64", "mips",
              "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64", "s390", "s390x",
              "sparc", "sparc64", "wasm"}
COMPONENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str | None  # None: not named (the host's)


def parse_platform(text: str) -> Platform:
    parts = text.split("/")
    for part in parts:
        if not COMPONENT.fullmatch(part):
            raise InvalidArgument(f'"{part}": is an invalid component of "{text}": platform specifier component '
                                  'must match "^[A-Za-z0-9_-]+$": invalid argument')
    first = parts[0].lower()
    os_name = OS_ALIASES.get(first, first)
    if len(parts) > 1:
        second = parts[1].lower()
        return Platform(os_name, ARCH_ALIASES.get(second, second))
    if os_name in KNOWN_OS:
        return Platform(os_name, None)
    if ARCH_ALIASES.get(first, first) in KNOWN_ARCH:  # a lone architecture: containerd's default OS
        return Platform("linux", ARCH_ALIASES.get(first, first))
    raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
