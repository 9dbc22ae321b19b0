"""Removing a legacy link: `docker rm --link /web/db`, `DELETE /containers/web/db?link=1`.

A link's name is `<linking container>/<alias>`, as in moby's name registry (`/web/db` is the
container linked as `db`, seen from `web`). Removing it drops the `--link` from the linking
container's record (HostConfig.Links: its next start neither resolves it nor sets its variables;
NetworkSettings.Links) and, through engine.network.links.unlink, from its endpoint record: a
running container's /etc/hosts loses the alias's line and the embedded DNS stops answering it, as
moby's sandbox refresh does. Variables a running process was given stay with it (moby cannot take
them back either). Invariants: the linked container is untouched; a name that is no link changes
nothing and is moby's 404 or conflict.
Legacy links exist on the default bridge only (moby registers no link name on a user-defined
network), so a container on another network has no link to remove.
"""

from __future__ import annotations

from engine.config import EngineConfig
from engine.container import state
from engine.container.state import ContainerRecord
from engine.errors import Conflict, InvalidArgument, NotFound

DEFAULT_BRIDGE_MODES = ("", "default", "bridge")


def remove_link(config: EngineConfig, link_name: str) -> ContainerRecord:
    """Remove the link named `<container>/<alias>`; the linking container's record after it."""
    from engine.network import links

    name = link_name.strip("/")
    parent_name, _, alias = name.rpartition("/")
    if not parent_name:
        state.find_container(config, name)  # moby resolves the name first: 404 when it names nothing
        raise Conflict("Conflict, cannot remove the default link name of the container")
    try:
        parent = state.find_container(config, parent_name)
    except NotFound:
        raise NotFound(f"No such container: {name}") from None
    if parent.host_config.get("NetworkMode") not in DEFAULT_BRIDGE_MODES:
        raise NotFound(f"No such container: {name}")

    def drop(record: ContainerRecord) -> None:
        given = record.host_config.get("Links") or []
        kept = [text for text in given if _alias(text) != alias]
        if len(kept) == len(given):
            raise NotFound(f"No such container: {name}")
        record.host_config["Links"] = kept or None
        shown = record.network.get("Links")  # "/db:/web/alias", as the last start resolved them
        if shown:
            record.network["Links"] = [text for text in shown if not text.endswith(f"/{alias}")] or None

    record = state.update(config, parent.id, drop)
    links.unlink(config, parent.id, alias)
    return record


def _alias(text: str) -> str | None:
    from engine.network import links

    try:
        return links.parse_link(text)[1]
    except InvalidArgument:
        return None
