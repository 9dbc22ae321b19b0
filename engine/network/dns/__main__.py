"""`python -S -m engine.network.dns --root ROOT [--upstream SERVER ...]`: the resolver process
(engine.network.dns.resolver), started by engine.network.dns.client."""

from __future__ import annotations

import signal
import sys


def main(argv: list[str]) -> int:
    from pathlib import Path

    from engine.config import EngineConfig
    from engine.network.dns import resolver

    root = None
    upstreams: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--root":
            root = next(args, None)
        elif arg == "--upstream":
            upstreams.append(next(args, ""))
    if not root:
        print("usage: python -m engine.network.dns --root ROOT [--upstream SERVER ...]", file=sys.stderr)
        return 2
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # whatever the starting monitor blocked
    return resolver.main(EngineConfig(root=Path(root)), tuple(upstreams))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
