"""Docker's container update body (`POST /containers/{id}/update`) -> engine.container.update's
`Update`.

The fields dockui applies are the resources `docker update` changes and the restart policy; any
other field is accepted only at its default (the docker CLI sends every resource field, zeros
included) and otherwise refused with a 400 naming it. Zero means "unchanged", as in Docker's
update body (Docker's own rule: a resource can be changed, never reset to "unset", by update),
except PidsLimit, a pointer in Docker's body: absent is unchanged, 0 or negative is unlimited.
Invariant: translation only.
"""

from __future__ import annotations

import json
from typing import Any

from engine.container.update import Update
from engine.errors import InvalidArgument
from engine.service.fields import check_int64, json_dict, json_int, json_str

SECTION = "update"
APPLIED = {"Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota",
           "CpusetCpus", "PidsLimit", "BlkioWeight", "RestartPolicy"}


def update_request(body: Any, version: tuple[int, int]) -> Update:
    """The Update a body asks for at API `version` (PidsLimit, as Docker's router: ignored below 1.40,
    and 0 or any negative value is "unlimited", kept as 0)."""
    if not isinstance(body, dict):
        raise InvalidArgument("the update body must be a JSON object")
    check_int64("UpdateConfig", body)
    for key, value in body.items():
        if key not in APPLIED and value not in (None, "", 0, False, [], {}):
            raise InvalidArgument(f"{key} cannot be updated by dockui (got {json.dumps(value)})")
    nano = json_int(SECTION, body, "NanoCpus") or 0
    pids = json_int(SECTION, body, "PidsLimit") if version >= (1, 40) else None
    return Update(
        memory=json_int(SECTION, body, "Memory") or None,
        memory_swap=json_int(SECTION, body, "MemorySwap") or None,
        memory_reservation=json_int(SECTION, body, "MemoryReservation") or None,
        cpus=nano / 1e9 if nano else None,
        cpu_shares=json_int(SECTION, body, "CpuShares") or None,
        cpu_period=json_int(SECTION, body, "CpuPeriod") or None,
        cpu_quota=json_int(SECTION, body, "CpuQuota") or None,
        cpuset_cpus=json_str(SECTION, body, "CpusetCpus") or None,
        pids_limit=None if pids is None else max(pids, 0),
        blkio_weight=json_int(SECTION, body, "BlkioWeight") or None,
        restart=_restart(body),
    )


def _restart(body: dict[str, Any]) -> str | None:
    policy = json_dict(SECTION, body, "RestartPolicy")
    name = json_str("RestartPolicy", policy, "Name") or ""
    if not name:
        return None
    retries = json_int("RestartPolicy", policy, "MaximumRetryCount") or 0
    return f"{name}:{retries}" if name == "on-failure" and retries else name
