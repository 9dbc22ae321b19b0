"""The former `engine.network.endpoints` namespace, kept as a compatibility surface for callers that
have not moved to the network modules yet: each public name resolves, on first use, to its home
(records, plumbing, networks, endpoint, reconcile, topology); `topology` is topology.read.

New code imports from the homes directly.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "ALIAS_PREFIX": "plumbing",
    "CLONE_NEWNET": "plumbing",
    "DEFAULT_MTU": "records",
    "DEFAULT_NETWORK": "records",
    "Endpoint": "records",
    "NetworkInfo": "records",
    "NetworkPlan": "records",
    "NetworkSpec": "records",
    "PREDEFINED": "records",
    "PREPARE_GRACE_SECONDS": "reconcile",
    "all_networks": "records",
    "all_records": "records",
    "attach": "endpoint",
    "bridge_missing": "plumbing",
    "bridge_ready": "plumbing",
    "bring_up_loopback": "plumbing",
    "collect_abandoned_bridges": "networks",
    "configure_inside": "plumbing",
    "connect": "endpoint",
    "containers_on": "networks",
    "create_network": "networks",
    "create_veth": "plumbing",
    "default_network": "networks",
    "delete_link": "plumbing",
    "detach": "endpoint",
    "detach_locked": "endpoint",
    "disconnect": "endpoint",
    "endpoints_dir": "records",
    "endpoints_of": "records",
    "ensure_bridge": "plumbing",
    "get_network": "networks",
    "inspect_network": "topology",
    "iproute": "plumbing",
    "link_index": "plumbing",
    "list_networks": "networks",
    "load_network": "records",
    "load_record": "records",
    "netns_alive": "plumbing",
    "netns_iproute": "plumbing",
    "networks_dir": "records",
    "our_bridges": "networks",
    "prepare": "endpoint",
    "prune_networks": "networks",
    "reconcile": "reconcile",
    "record_path": "records",
    "release": "endpoint",
    "remove_bridges": "networks",
    "remove_network": "networks",
    "rename": "endpoint",
    "rt_delete_link": "plumbing",
    "save_network": "records",
    "save_record": "records",
    "start_ticks": "plumbing",
    "unplug_in_background": "plumbing",
    "unplugging": "plumbing",
    "veth_name": "records",
    "wait_links_gone": "plumbing",
    "with_iproute": "plumbing",
}

__all__ = sorted([*_HOMES, "topology"])


def __getattr__(name: str) -> object:
    if name == "topology":
        value = importlib.import_module("engine.network.topology").read
    elif name in _HOMES:
        value = getattr(importlib.import_module(f"engine.network.{_HOMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
