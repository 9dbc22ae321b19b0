"""Engine loggers that load the `logging` module only when something is logged.

Importing `logging` (and the threading, traceback and string modules it pulls in) costs ~7 ms, on
every `dockui` start. Most runs log nothing, so modules take a `get_logger(__name__)` here instead
of `logging.getLogger`, and the CLI's `--log-level` is applied the first time a message is logged.
"""

from __future__ import annotations

_pending_level: str | None = None


def configure(level: str) -> None:
    """Remember the CLI's `--log-level`; applied (logging.basicConfig) when a logger is first used."""
    global _pending_level
    _pending_level = level
    if level.lower() in ("debug", "info"):  # asked for chatter: it will come, no need to wait
        _apply()


def _apply() -> None:
    global _pending_level
    import logging

    if _pending_level is not None:
        logging.basicConfig(level=_pending_level.upper(), format="%(levelname)s %(name)s: %(message)s")
        _pending_level = None


class LazyLogger:
    """Stands for `logging.getLogger(name)`; the real logger is made on first use."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> object:
        import logging

        _apply()
        real = logging.getLogger(self.name)
        return getattr(real, attr)


def get_logger(name: str) -> LazyLogger:
    return LazyLogger(name)


class TolerantStream:
    """A text stream whose failed writes are dropped, not raised.

    The monitor's stderr is `<container>/monitor.log`, on the filesystem that may be full: a
    diagnostic that cannot be written must not stop the stage that records the container's exit.
    """

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()  # type: ignore[attr-defined]
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
