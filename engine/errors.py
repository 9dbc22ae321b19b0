"""Errors the engine raises on purpose: each carries the exit status `run` should use.

Docker's conventions: 125 when the engine itself fails (bad flag, missing image, registry error),
126 when the container's command cannot be invoked, 127 when it is not found. The other verbs
exit 1 for these, as the docker CLI's (engine.cli.error_status decides, in one place).
"""

from __future__ import annotations


class DockuiError(Exception):
    """An error with a message meant for people; exit status 125 unless a subclass says otherwise."""

    exit_code = 125


class InvalidArgument(DockuiError):
    """A malformed reference, flag value or option."""


class NotFound(DockuiError):
    """No such image, container, network, volume or layer."""


class Conflict(DockuiError):
    """The name is in use, the port is taken, the container is in the wrong state..."""


class NeedsRoot(DockuiError):
    """The operation needs root (namespaces, mounts, cgroups, netlink)."""


class RegistryError(DockuiError):
    """The registry refused or failed a request (after retries)."""


class IntegrityError(DockuiError):
    """A digest did not match, a tar was malicious, a manifest was malformed."""


class CommandNotInvokable(DockuiError):
    exit_code = 126


class CommandNotFound(DockuiError):
    exit_code = 127


class NotSupported(DockuiError):
    """A verb the container's configuration rules out (`logs` with `--log-driver none`): Docker's 501."""


class InvalidConfig(DockuiError):
    """The configuration file is unreadable, not JSON, or sets a key wrongly (or one nothing reads)."""


class CorruptState(DockuiError):
    """A state file (a container record, the image index) cannot be read: the message names the
    file and how to recover."""


class DiskFull(DockuiError):
    """The filesystem under the state root (or the destination) has no space left."""


def from_os_error(exc: OSError, what: str, root: object = None) -> DockuiError:
    """An OSError the engine did not expect, as the one line a user sees (the CLI's last resort).

    Permission problems say that the verb needs the rights (as Docker's "permission denied while
    trying to connect"); a full disk says where and what frees space; anything else keeps the
    system's words and the file they concern.
    """
    import errno

    where = f" on {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return NeedsRoot(f"{what}: permission denied{where}: the state root is root's (run it with sudo)")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        under = f" under {root}" if root else ""
        return DiskFull(f"{what}: no space left on device{where}: free space{under} "
                        "(dockui rm, rmi, image prune) and try again")
    if exc.errno == errno.EROFS:
        return DockuiError(f"{what}: read-only file system{where}")
    return DockuiError(f"{what}: {exc.strerror or exc}{where}")
