"""Docker's container list filters (`ps --filter`, `GET /containers/json?filters=`): one
implementation for the CLI, the TUI and the Engine API service.

A filter is a mapping key -> values, parsed from `key=value` words (the CLI) or the pairs the
Engine API service reads from Docker's filters JSON. Invariant: an unknown key, or a status Docker does not have, is an InvalidArgument
naming it before anything is listed; the values of one key match if any matches, different keys
all must (a `label` filter's values all must, as Docker's); `status` implies `-a` (not `exited`:
`ps --filter exited=0` lists no stopped container without `-a`), as moby's list has it.
"""

from __future__ import annotations

import contextlib

from engine.config import EngineConfig
from engine.container import state
from engine.errors import DockuiError, InvalidArgument

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from engine.container.state import ContainerRecord

    Filters = dict[str, tuple[str, ...]]

LIST_FILTERS = ("id", "name", "label", "status", "ancestor", "network", "exited", "before", "since", "volume",
                "health", "publish", "expose", "is-task", "isolation")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
SHOWN_WITHOUT_ALL = ("running", "paused", "restarting")


def filter_words(words: Iterable[str]) -> list[tuple[str, str]]:
    """The CLI's repeated `--filter KEY=VALUE`, read as the docker CLI reads it (ps, prune, ...)."""
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise InvalidArgument(f"bad format of filter (expected name=value): {word}")
        pairs.append((key, value))
    return pairs


def parse_words(words: Iterable[str]) -> Filters:
    """`--filter key=value` words, checked."""
    return parse_pairs(filter_words(words))


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> Filters:
    """(key, value) pairs (the Engine API's filters JSON, read by engine.service.filters), checked."""
    filters: dict[str, list[str]] = {}
    for key, value in pairs:
        filters.setdefault(key, []).append(value)
    return _checked({key: tuple(values) for key, values in filters.items()})


def _checked(filters: Filters) -> Filters:
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "status":
            for v in values:
                if v not in STATUSES:
                    raise InvalidArgument(f"invalid filter 'status={v}'")
        if key == "is-task":
            for v in values:
                if v.lower() not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter 'is-task={v}'")
        if key in ("publish", "expose"):
            for v in values:
                _port_keys(key, v)
    return filters


def _port_keys(key: str, value: str) -> set[str]:
    """`80`, `80/udp`, `8000-8010[/tcp]`: the `port/proto` keys a publish or expose filter wants."""
    port, _, proto = value.partition("/")
    low, dash, high = port.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise InvalidArgument(f"invalid filter '{key}={value}': not a port or a range of ports") from None
    if not 0 < first <= last <= 65535:
        raise InvalidArgument(f"invalid filter '{key}={value}': not a port or a range of ports")
    return {f"{number}/{proto or 'tcp'}" for number in range(first, last + 1)}


def _ports_of(record: ContainerRecord, key: str) -> set[str]:
    """`port/proto` keys of a running container: the host side of each binding (publish) or the
    container side of each port, published or only exposed (expose), as moby's list reads Ports."""
    from engine.container.status import published_ports

    found = set()
    for port, bindings in published_ports(record).items():
        proto = port.partition("/")[2] or "tcp"
        if key == "expose":
            found.add(f"{port.partition('/')[0]}/{proto}")
        else:
            found |= {f"{b.get('HostPort')}/{proto}" for b in bindings or [] if b.get("HostPort")}
    return found


def _ancestry(config: EngineConfig, refs: Iterable[str]) -> frozenset[str]:
    """moby's ancestor filter: the images the references name and every image made from them
    (children, down the chain); a reference to no image adds none."""
    from engine.image.store import ImageStore
    from engine.image.store.images import children_by_parent

    store = ImageStore(config)
    found: set[str] = set()
    for ref in refs:
        with contextlib.suppress(DockuiError):
            found.add(store.resolve(ref).id)
    if found:
        children = children_by_parent(store.list_images())
        todo = list(found)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return frozenset(found)


def select(config: EngineConfig, records: Iterable[ContainerRecord], filters: Filters,
           all_: bool = False) -> list[ContainerRecord]:
    """The records (in their order) `ps` shows: running ones unless `all_` (or a status filter),
    created before/since the named containers, matching every filter."""
    show_all = all_ or "status" in filters  # moby's list: status implies -a, exited does not
    before = _created_of(config, filters.get("before"))
    since = _created_of(config, filters.get("since"))
    ancestry = _ancestry(config, filters["ancestor"]) if "ancestor" in filters else None
    shown = []
    for record in records:
        if not show_all and record.status not in SHOWN_WITHOUT_ALL:
            continue
        if before is not None and record.created >= before:
            continue
        if since is not None and record.created <= since:
            continue
        if matches(config, record, filters, ancestry):
            shown.append(record)
    return shown


def _created_of(config: EngineConfig, refs: tuple[str, ...] | None) -> str | None:
    if not refs:
        return None
    return state.find_container(config, refs[0]).created


def matches(config: EngineConfig, record: ContainerRecord, filters: Filters,
            ancestry: frozenset[str] | None = None) -> bool:
    """Whether the record passes every filter but before/since (which compare with others);
    `ancestry`: the ancestor filter's image IDs, when the caller worked them out once for a list."""
    if "ancestor" in filters and ancestry is None:
        ancestry = _ancestry(config, filters["ancestor"])
    tests: dict[str, Callable[[str], bool]] = {
        "id": lambda v: record.id.startswith(v),
        "name": lambda v: _name_matches(v.lstrip("/"), record.name),
        "status": lambda v: record.status == v,
        "exited": lambda v: record.status == "exited" and str(record.exit_code) == v,
        "ancestor": lambda v: record.image_id in (ancestry or ()),  # noqa: ARG005 - the IDs of every value, worked out above
        "is-task": lambda v: v.lower() in ("false", "0"),  # no container here is a swarm task
        "isolation": lambda v: v == "default",  # Linux has one isolation
        "volume": lambda v: any(v in (m.get("Name"), m.get("Source"), m.get("Destination")) for m in record.mounts),
    }
    for key, values in filters.items():
        if key in ("before", "since"):
            continue
        if key == "label":
            labels = record.config.get("Labels") or {}
            ok = all(k in labels and (not sep or labels[k] == v) for k, sep, v in (x.partition("=") for x in values))
        elif key == "network":
            ok = bool(_networks_of(config, record) & set(values))
        elif key in ("publish", "expose"):
            ok = bool(_ports_of(record, key) & set().union(*(_port_keys(key, v) for v in values)))
        elif key == "health":
            from engine.container import health

            ok = health.status_of(record.health) in {health.check_filter_value(v) for v in values}
        else:
            ok = any(tests[key](v) for v in values)
        if not ok:
            return False
    return True


def _name_matches(pattern: str, name: str) -> bool:
    """Docker's name filter is a Go (RE2) regular expression: matched here at a bounded cost
    (engine.util.boundedregex), never by a backtracking `re` a hostile pattern can stall."""
    from engine.util.boundedregex import search

    return search(pattern, name, "name filter")


def _networks_of(config: EngineConfig, record: ContainerRecord) -> set[str]:
    """Names and IDs of the networks the container is on: its mode, the networks it started with,
    and those `network connect` added since (its endpoint record), as Docker's filter matches them."""
    names = {record.host_config.get("NetworkMode") or "bridge"} | set(record.network.get("Networks") or {})
    names |= {entry.get("Network", "") for entry in record.host_config.get(state.PENDING_NETWORKS) or []}
    from engine.network.records import load_record

    with contextlib.suppress(DockuiError, OSError, ValueError):  # no readable endpoint record: no more
        endpoints = load_record(config, record.id)
        if endpoints is not None:
            names |= {ep.network for ep in endpoints.endpoints} | {ep.network_id for ep in endpoints.endpoints}
    return names
