"""Docker's volume copy-up: a new (empty) named or anonymous volume starts with what the image holds
at its mount point (owners, modes, links and extended attributes kept), unless the mount says
`nocopy` (`-v name:/path:nocopy`, `--mount ...,volume-nocopy`).

Done once, at create, for the volumes that are empty then: a volume that already holds data, or
one that was filled and later emptied by a container, is never written to again, as with Docker
(it copies into an empty volume only). The image's view is a read-only overlay of its layers
(under the container's init layer, so there are always two lower layers, which overlayfs needs
without an upper one), mounted in a private mount namespace of a child (`unshare -m`) that `cp -a`
runs in: nothing is mounted on the host, and the caller may be threaded (the API service), since
nothing forks in-process.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import DockuiError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def wanted(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The volume mounts to fill: copy-up not turned off and the volume still empty. A volume with
    driver options is left alone: its `_data` is mounted over only while a container runs, so a
    copy made now would be hidden under that mount (docs/lifecycle.md "Volumes")."""
    from engine.container.volumes import mounted_when_used

    found = []
    for m in mounts:
        if m.get("Type") == "volume" and m.get("CopyData", True) and m.get("Source"):
            if m.get("DriverOptions") or (not m.get("Anonymous") and mounted_when_used(Path(m["Source"]))):
                continue
            try:
                empty = not any(os.scandir(m["Source"]))
            except OSError:
                continue
            if empty:
                found.append(m)
    return found


def copy_up(config: EngineConfig, rw_layer: Path, lowerdir: str, mounts: list[dict[str, Any]]) -> None:
    """Fill each empty volume of `mounts` from the image at its destination (the image's layers are
    `lowerdir`, the store's option value relative to the layers dir; `rw_layer` holds the init layer)."""
    targets = wanted(mounts)
    if not targets:
        return
    config.tmp_dir.mkdir(parents=True, exist_ok=True)
    view = Path(config.tmp_dir) / f"copyup-{os.getpid()}-{os.urandom(4).hex()}"
    view.mkdir(mode=0o700)
    lowers = f"{os.path.relpath(rw_layer / 'init', config.layers_dir)}:{lowerdir}"
    steps = [f"mount -t overlay overlay -o ro,lowerdir={shlex.quote(lowers)} {shlex.quote(str(view))}"]
    for m in targets:
        source = str(view) + os.path.normpath(m["Destination"])
        # Only a directory in the image is copied (a file or nothing there: the volume stays empty).
        steps.append(f"if [ -d {shlex.quote(source)} ] && [ ! -L {shlex.quote(source)} ]; then "
                     f"cp -a {shlex.quote(source + '/.')} {shlex.quote(m['Source'] + '/')}; fi")
    try:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-ec", " && ".join(steps)],
            cwd=config.layers_dir, capture_output=True, text=True, check=False,
        )
    finally:
        os.rmdir(view)  # its mount went with the child's namespace
    if result.returncode != 0:
        raise DockuiError(f"copying the image's content into a volume failed: {result.stderr.strip()}")
