"""Docker's detach keys on a tty's input (attach and exec): which bytes they are, and spotting them.

When a client types the sequence (default ctrl-p,ctrl-q) it is let go and the container (or the
exec'd command) runs on with its stdin open: the Engine API service does it for its clients
(engine/service/attach.py, execs.py), dockui's own attached CLI for its terminal
(engine/cli/container_run.py, container_io.py: which keys a client wants, `client_detach_keys`). The
syntax is Docker's (`ctrl-a`..`ctrl-z`, `ctrl-@`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`, `ctrl-_`,
`DEL`, single characters, comma-separated); a bad one is Docker's 400 "Invalid detach keys".
Invariant: bytes of the sequence are never forwarded; bytes that only began it are forwarded, in
order, as soon as the input shows they were not the sequence.
"""

from __future__ import annotations

from engine.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
CONFIG_FILE_KEY = "detachKeys"  # the docker CLI's config.json key (configfile.ConfigFile.DetachKeys)
_CTRL_NAMES = ["ctrl-@", *(f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)),
               "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_"]


def detach_sequence(keys: str | None) -> bytes:
    """Docker's detach keys (`ctrl-p,ctrl-q`; `ctrl-@`..`ctrl-_`, `DEL` or single characters) as
    the bytes a client types; the default when none are given."""
    codes = bytearray()
    for key in (keys or DEFAULT_DETACH_KEYS).split(","):
        if len(key) == 1:
            codes += key.encode()
        elif key in _CTRL_NAMES:
            codes.append(_CTRL_NAMES.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise InvalidArgument(f"Invalid detach keys ({keys}) provided")
    return bytes(codes)


def client_detach_keys(flag: str | None) -> str:
    """The keys a client asks for, as the docker CLI picks them: `--detach-keys`, else its config
    file's `detachKeys` ($DOCKER_CONFIG/config.json or ~/.docker/config.json), else "" (the engine's
    default, ctrl-p,ctrl-q). An unreadable config file is no keys, as the CLI reads it leniently."""
    if flag:
        return flag
    import json

    from engine.image.auth import docker_auth_file  # the docker CLI's config file (its path rules)

    path = docker_auth_file()
    if path is None:
        return ""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return ""
    keys = data.get(CONFIG_FILE_KEY) if isinstance(data, dict) else None
    return keys if isinstance(keys, str) else ""


class DetachScanner:
    """Docker's escape proxy over a tty's input: bytes that could start the detach sequence are held
    back; the whole sequence detaches (and is never forwarded), a mismatch releases what was held."""

    def __init__(self, sequence: bytes) -> None:
        self.sequence = sequence
        self.held = 0  # how many bytes of the sequence the input has matched so far

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(the bytes to forward, whether the client typed the detach sequence)."""
        out = bytearray()
        for byte in data:
            if self.sequence and byte == self.sequence[self.held]:
                self.held += 1
                if self.held == len(self.sequence):
                    return bytes(out), True
                continue
            out += self.sequence[:self.held]
            self.held = 0
            if self.sequence and byte == self.sequence[0]:
                self.held = 1
                continue
            out.append(byte)
        return bytes(out), False
