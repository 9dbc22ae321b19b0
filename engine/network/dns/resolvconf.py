"""The resolv.conf of a container on a user-defined network, as Docker writes it: the search
domains and options of the host (or of `--dns-search`/`--dns-option`), `nameserver 127.0.0.11`
alone, and `options ndots:0` unless an ndots option is set. The container's `--dns` servers are
not written: the embedded resolver forwards to them (engine.network.dns.upstreams).
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.network import hostsfiles

EMBEDDED_NAMESERVER = "127.0.0.11"


def embedded_resolv_conf(host_text: str, dns_search: Iterable[str] = (), dns_options: Iterable[str] = ()) -> str:
    text = hostsfiles.resolv_conf_content(host_text, [EMBEDDED_NAMESERVER], dns_search, dns_options)
    lines = text.splitlines()
    options = [line for line in lines if line.startswith("options ")]
    if not any(word.startswith("ndots:") for line in options for word in line.split()[1:]):
        if options:
            lines[lines.index(options[0])] += " ndots:0"
        else:
            lines.append("options ndots:0")
    return "\n".join(lines) + "\n"
