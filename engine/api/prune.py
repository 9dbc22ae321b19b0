"""Docker's prune filters, one reading for `container prune`, `image prune`, `volume prune` and
`network prune` (the CLI's `--filter` and the service's `filters` query alike).

    until=T      only what was created before T (a Unix time, an RFC3339 time or date, or a
                 duration ago: `24h`); containers, images and networks
    label=K      only what has label K (`label=K=V`: with value V); every label= must match
    label!=K     not what has label K (`label!=K=V`); excluded when every label!= matches
    dangling=B   images: false prunes every unused image, not only the dangling ones
    all=B        volumes: true prunes named volumes too, not only anonymous ones

Invariant: the rules are moby's (daemon/prune.go `matchLabels`, `getUntilFromPruneFilters`, each
kind's accepted keys); a key a kind does not take, or a value that is not one, is refused in one
line (InvalidArgument, a 400) before anything is removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.config import EngineConfig

CONTAINER_KEYS = frozenset({"until", "label", "label!"})
IMAGE_KEYS = frozenset({"until", "label", "label!", "dangling"})
VOLUME_KEYS = frozenset({"label", "label!", "all"})
NETWORK_KEYS = frozenset({"until", "label", "label!"})
_FLAGS = ("dangling", "all")


@dataclass(frozen=True)
class PruneFilter:
    """What a prune may remove, beyond its own rule (stopped, unused, dangling)."""

    until: float | None = None
    labels: tuple[str, ...] = ()
    not_labels: tuple[str, ...] = ()
    flag: bool | None = None  # `dangling` (images) or `all` (volumes); None when not given

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]], accepted: frozenset[str]) -> PruneFilter:
        until: float | None = None
        labels: list[str] = []
        not_labels: list[str] = []
        flag: bool | None = None
        for key, value in pairs:
            if key not in accepted:
                raise InvalidArgument(f"invalid filter '{key}'")
            if key == "until":
                if until is not None:
                    raise InvalidArgument("more than one until filter specified")
                until = _timestamp(value)
            elif key == "label":
                labels.append(value)
            elif key == "label!":
                not_labels.append(value)
            else:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter '{key}={value}'")
                flag = value.lower() in ("true", "1")
        return cls(until, tuple(labels), tuple(not_labels), flag)

    def selects(self, created: float | None, labels: Mapping[str, str] | None) -> bool:
        """True when the filters let the item go (`created`: Unix seconds; None: unknown)."""
        if self.until is not None and (created is None or created > self.until):
            return False
        found = labels or {}
        if not _match_all(self.labels, found):
            return False
        return not (self.not_labels and _match_all(self.not_labels, found))

    def selects_created(self, created: str, labels: Mapping[str, str] | None) -> bool:
        """`selects` for an RFC3339 creation time (as records keep it)."""
        from engine.util.timefmt import parse_rfc3339

        return self.selects(parse_rfc3339(created), labels)


def log_prune(config: EngineConfig, kind: str, reclaimed: int) -> None:
    """moby's `prune` event after each prune: no actor, the bytes reclaimed (0 for networks)."""
    from engine import events

    events.emit(config, kind, "prune", "", {"reclaimed": str(reclaimed)})


def from_flags(values: Iterable[str], accepted: frozenset[str]) -> PruneFilter:
    """The CLI's repeated `--filter KEY=VALUE` (engine.container.filters.filter_words), for prune."""
    from engine.container.filters import filter_words

    return PruneFilter.parse(filter_words(values), accepted)


def _match_all(wanted: tuple[str, ...], labels: Mapping[str, str]) -> bool:
    """moby's MatchKVList: every `K` or `K=V` is in `labels` (true when nothing is wanted)."""
    for item in wanted:
        key, has_value, value = item.partition("=")
        if key not in labels or (has_value and labels[key] != value):
            return False
    return True


def _timestamp(value: str) -> float:
    from engine.container.logs import parse_since

    try:
        stamp = parse_since(value)
    except InvalidArgument:
        stamp = None
    if stamp is None:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')  # moby's words
    return stamp
