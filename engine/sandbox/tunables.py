"""What a container's first process sets up in its own namespaces just before it drops privileges:
the device nodes it was given (`--device`) and its resource limits (`--ulimit`); and where
`--init`'s init comes from. (Its sysctls, `--sysctl` and Docker's network defaults, are written by
engine.sandbox.process itself.)

Runs in the child of engine.sandbox.process (single-threaded, after pivot_root, /proc and /dev
mounted): values are plain typed data computed by the monitor beforehand. Invariant: nothing here
reaches outside the container's namespaces (a node is made in the container's /dev tmpfs).
"""

from __future__ import annotations

import os
import resource
import stat
from dataclasses import dataclass

# Where Docker mounts its init (tini) in the container, and the static inits we can bind there.
INIT_PATH = "/sbin/docker-init"
INIT_CANDIDATES = ("/usr/bin/docker-init", "/usr/bin/tini-static", "/usr/local/bin/docker-init",
                   "/usr/libexec/docker/docker-init", "/usr/sbin/tini-static")


@dataclass(frozen=True)
class DeviceNode:
    """One `--device`: the node to make in the container (type "c" or "b") and its owner and mode."""

    path: str
    kind: str
    major: int
    minor: int
    mode: int
    uid: int
    gid: int

    def rule(self, permissions: str) -> str:
        """Its line for the devices controller, e.g. `c 1:3 rwm`."""
        return f"{self.kind} {self.major}:{self.minor} {permissions}"


def device_node(host_path: str, container_path: str) -> DeviceNode:
    """The node `host_path` is (following a symlink, as Docker does); ValueError if not a device."""
    st = os.stat(host_path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise ValueError(f"{host_path} is not a device node")
    return DeviceNode(container_path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                      stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


@dataclass(frozen=True)
class Ulimit:
    """One `--ulimit`: a setrlimit(2) resource and its soft and hard values (RLIM_INFINITY: unlimited)."""

    resource: int
    soft: int
    hard: int


def ulimit(name: str, soft: int, hard: int) -> Ulimit:
    def value(v: int) -> int:
        return resource.RLIM_INFINITY if v == -1 else v

    return Ulimit(getattr(resource, f"RLIMIT_{name.upper()}"), value(soft), value(hard))


def find_init() -> str | None:
    """A static init to bind at INIT_PATH (Docker's docker-init is tini built static)."""
    for candidate in INIT_CANDIDATES:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    return None


# ------------------------------------------------------------------------------------------ in the child


def make_device_nodes(nodes: list[DeviceNode]) -> None:
    """mknod each node in the container's /dev (a tmpfs of its own), owner and mode as on the host."""
    for node in nodes:
        os.makedirs(os.path.dirname(node.path), mode=0o755, exist_ok=True)
        if os.path.lexists(node.path):
            os.unlink(node.path)
        kind = stat.S_IFCHR if node.kind == "c" else stat.S_IFBLK
        os.mknod(node.path, kind | node.mode, os.makedev(node.major, node.minor))
        os.chown(node.path, node.uid, node.gid)
        os.chmod(node.path, node.mode)


def set_ulimits(limits: list[Ulimit]) -> None:
    for item in limits:
        resource.setrlimit(item.resource, (item.soft, item.hard))
