"""The home screen's header: host CPU per core, memory and load, and what the CPU column means."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.backend import HostView
from tui.widgets.charts import human_bytes

LEGEND = "CPU % is of one core, as docker stats counts it (200% = 2 cores) · space marks"


def meter(percent: float, width: int = 10) -> str:
    filled = max(0.0, min(100.0, percent)) * width / 100
    full = int(filled)
    part = " ▏▎▍▌▋▊▉"[int((filled - full) * 8)] if full < width else ""
    return ("█" * full + part).ljust(width)


class HostBar(Static):
    """One line (two when there are many cores): fed by each refresh, redrawn only when it changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("host: waiting for the first sample…", id=id)
        self._last: HostView | None = None
        self._containers = (0, 0)
        self._cell_len = -1

    def on_resize(self) -> None:
        if self._last is not None:
            last, self._last = self._last, None
            self.set_host(last, *self._containers)

    def set_host(self, host: HostView | None, running: int, total: int) -> None:
        if host == self._last and (running, total) == self._containers:
            return
        self._last = host
        self._containers = (running, total)
        text = Text()
        text.append(f"{running}/{total} running  ", style="bold")
        if host is None:
            text.append("host figures unavailable")
            self.update(text)
            self._cell_len = -1
            return
        wide = (self.size.width or 80) >= 100
        text.append("CPU ")
        for i, pct in enumerate(host.cpu_per_core):
            if wide:
                text.append(f"{i}", style="dim")
                text.append(f"▕{meter(pct, 6)}▏", style="bold")
            text.append(f"{pct:3.0f}% ")
        mem_pct = 100.0 * host.mem_used / host.mem_total if host.mem_total else 0.0
        text.append(" MEM ")
        if wide:
            text.append(f"▕{meter(mem_pct, 6)}▏", style="bold")
        text.append(f"{human_bytes(host.mem_used)}/{human_bytes(host.mem_total)} ")
        text.append(" load ")
        text.append(" ".join(f"{x:.2f}" for x in (host.load if wide else host.load[:1])))
        # A new layout of the whole screen costs ~15 ms with 250 rows: asked for only when the text's
        # length changed (it may then wrap onto another line), not for every second's new figures.
        self.update(text, layout=text.cell_len != self._cell_len)
        self._cell_len = text.cell_len
