"""The network as a live tree: bridge → veth port → container (eth0 address, MAC, rates, ports, links)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Footer, Static, Tree

from tui.backend import Backend, BridgeView
from tui.screens.base import DataScreen, Job
from tui.widgets.charts import human_bytes
from tui.widgets.nav import NavBar


def _link(value: str) -> str:
    """Docker's HostConfig.Links entry "/web:/client/frontend" as "web as frontend"."""
    name, _, alias = value.partition(":")
    if name.startswith("/") and alias.startswith("/"):
        return f"{name.lstrip('/')} as {alias.rsplit('/', 1)[-1]}"
    return value


class NetworkScreen(DataScreen):
    def __init__(self) -> None:
        super().__init__()
        self.bridges: list[BridgeView] | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("network", id="nav")
        yield Tree("networks", id="net-tree")
        yield Static("", id="net-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.show_root = False
        tree.guide_depth = 3
        self.query_one("#net-message").display = False
        tree.focus()

    def refresh_job(self) -> Job | None:
        def job(backend: Backend) -> list[BridgeView] | Exception:
            try:
                return backend.topology()
            except Exception as exc:
                return exc

        return job

    def apply_data(self, data: Any) -> None:
        message = self.query_one("#net-message", Static)
        message.display = isinstance(data, Exception) or not data
        if isinstance(data, Exception):
            message.update(f"⚠ {data}")
        elif not data:
            message.update("No bridge yet: it is created when the first container with a network starts.")
        if not isinstance(data, Exception) and data != self.bridges:
            self._draw(data)
            self.bridges = data
        super().apply_data(data)

    def _draw(self, bridges: list[BridgeView]) -> None:
        tree: Tree[Any] = self.query_one(Tree)
        if self.bridges is not None and [(b.name, [p.veth for p in b.ports]) for b in bridges] == \
                [(b.name, [p.veth for p in b.ports]) for b in self.bridges]:
            # same shape: relabel in place (keeps the cursor and folding)
            for bnode, bridge in zip(tree.root.children, bridges, strict=False):
                bnode.set_label(self._bridge_label(bridge))
                for pnode, port in zip(bnode.children, bridge.ports, strict=False):
                    pnode.set_label(self._port_label(port))
                    cnode = pnode.children[0] if pnode.children else None
                    if cnode is not None:
                        cnode.set_label(self._container_label(port))
                        for child, label in zip(cnode.children, self._details(port), strict=False):
                            child.set_label(label)
            return
        tree.clear()
        for bridge in bridges:
            bnode = tree.root.add(self._bridge_label(bridge), expand=True)
            for port in bridge.ports:
                pnode = bnode.add(self._port_label(port), expand=True)
                cnode = pnode.add(self._container_label(port), expand=True)
                for label in self._details(port):
                    cnode.add_leaf(label)

    @staticmethod
    def _bridge_label(b: BridgeView) -> Text:
        return Text.assemble(("⇄ ", "bold"), (b.name, "bold"), f"  {b.subnet}  gw {b.gateway}  ",
                             (b.state, "italic"), f"  mtu {b.mtu}  {len(b.ports)} port(s)")

    @staticmethod
    def _port_label(p: Any) -> Text:
        return Text.assemble(("◆ ", "bold"), (p.veth, "bold"), f"  ifindex {p.ifindex}  ", (p.state, "italic"))

    @staticmethod
    def _container_label(p: Any) -> Text:
        return Text.assemble(("▣ ", "bold"), (p.container_name or p.container_id[:12], "bold"),
                             f"  eth0 {p.ip}  {p.mac}  ",
                             f"rx {human_bytes(p.rx_rate, '/s')}  tx {human_bytes(p.tx_rate, '/s')}")

    @staticmethod
    def _details(p: Any) -> list[Text]:
        out = [Text(f"port {x}") for x in p.published]
        out += [Text(f"link {_link(x)}") for x in p.links]
        return out
