"""The networks: a list (create, remove, connect, disconnect, prune) beside a live tree of the
bridges: network (bridge device, subnet, gateway, state, MTU) → veth port → container (the
interface inside with its address: eth1 on a second network; MAC, rates) → published ports and
links (a link only under a network both containers are on)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Static, Tree

from tui import keymap
from tui.backend import Backend, BridgeView, NetworkView, PortView
from tui.screens.base import DataScreen, Job
from tui.screens.prompt import Field, PromptDialog
from tui.widgets.charts import human_bytes
from tui.widgets.nav import NavBar
from tui.widgets.tables import fill_table, first_names

NETWORK_TITLES = ["NAME", "DRIVER", "SUBNET", "CONTAINERS"]


def _users(names: tuple[str, ...]) -> str:
    """How many containers are attached, and which (two named, then +N): `3: web, db +1`."""
    return f"{len(names)}: {first_names(names)}" if names else "0"


def _link(value: str) -> str:
    """Docker's HostConfig.Links entry "/web:/client/frontend" as "web as frontend"."""
    name, _, alias = value.partition(":")
    if name.startswith("/") and alias.startswith("/"):
        return f"{name.lstrip('/')} as {alias.rsplit('/', 1)[-1]}"
    return value


class NetworkScreen(DataScreen):
    BINDINGS = keymap.bindings(*keymap.SCREEN_ACTIONS["network"])
    LIST = "networks"

    def __init__(self) -> None:
        super().__init__()
        self.bridges: list[BridgeView] | None = None
        self.networks: list[NetworkView] = []

    def compose(self) -> ComposeResult:
        yield NavBar("network", id="nav")
        with Horizontal(id="net-panes"):
            yield DataTable(id="networks", cursor_type="row")
            yield Tree("networks", id="net-tree")
        yield Static("", id="net-message")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        tree = self.query_one(Tree)
        tree.show_root = False
        tree.guide_depth = 3
        fill_table(self.query_one("#networks", DataTable), NETWORK_TITLES, [])
        self.query_one("#net-message").display = False
        self.query_one("#networks", DataTable).focus()

    def on_resize(self) -> None:
        # side by side from 120 columns; below, the list above the tree (each needs its width)
        self.query_one("#net-panes").set_class(self.size.width < 120, "-stacked")

    def refresh_job(self) -> Job | None:
        def job(backend: Backend) -> tuple[list[NetworkView] | Exception, list[BridgeView] | Exception]:
            try:
                networks: list[NetworkView] | Exception = backend.networks()
            except Exception as exc:
                networks = exc
            try:
                return networks, backend.topology()
            except Exception as exc:
                return networks, exc

        return job

    def apply_data(self, data: Any) -> None:
        networks, bridges = data
        message = self.query_one("#net-message", Static)
        problems = [f"⚠ {x}" for x in (networks, bridges) if isinstance(x, Exception)]
        if not problems and not bridges:
            problems.append("No bridge yet: it is created when the first container with a network starts.")
        message.display = bool(problems)
        message.update("\n".join(problems))
        if not isinstance(networks, Exception) and networks != self.networks:
            self._fill_networks(networks)
        if not isinstance(bridges, Exception) and bridges != self.bridges:
            self._draw(bridges)
            self.bridges = bridges
        super().apply_data(data)

    # ---- the list

    def _fill_networks(self, networks: list[NetworkView]) -> None:
        table = self.query_one("#networks", DataTable)
        current = self.selected.name if self.selected else None
        self.networks = networks
        rows = [[n.name, n.driver + (" (internal)" if n.internal else ""), n.subnet or "-", _users(n.containers)]
                for n in networks]
        fill_table(table, NETWORK_TITLES, rows, keys=[n.name for n in networks])
        names = [n.name for n in networks]
        if current in names:
            table.move_cursor(row=names.index(current), animate=False)
        self.refresh_bindings()

    @property
    def selected(self) -> NetworkView | None:
        table = self.query_one("#networks", DataTable)
        if not self.networks or not (0 <= table.cursor_row < len(self.networks)):
            return None
        return self.networks[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()
        self._tree_to_selected()

    def _tree_to_selected(self) -> None:
        """The tree scrolls to the highlighted network's bridge, its containers under it."""
        net = self.selected
        tree: Tree[Any] = self.query_one(Tree)
        if net is None or self.bridges is None:
            return
        for node, bridge in zip(tree.root.children, self.bridges, strict=False):
            if (bridge.network or bridge.name) == net.name:
                tree.move_cursor(node, animate=False)
                tree.scroll_to_node(node, animate=False)
                return

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        net = self.selected
        if action == "copy":
            return net is not None
        if action == "remove_network":
            return net is not None and not net.builtin
        if action == "connect":
            return net is not None and net.driver == "bridge"
        if action == "disconnect":
            return net is not None and bool(net.containers)
        return True

    def action_copy(self, what: str) -> None:
        """y the network's full ID, Y its name."""
        net = self.selected
        if net is not None:
            self.dockui.copy_text(net.id if what == "id" else net.name, "ID" if what == "id" else "name")

    def action_create_network(self) -> None:
        def done(values: dict[str, str] | None) -> None:
            if values:
                self.dockui.engine_call(f"network {values['name']} created", self.dockui.backend.create_network,
                                        values["name"], values["subnet"])

        self.app.push_screen(PromptDialog("New bridge network", (
            Field("name", "Name:", placeholder="e.g. backend"),
            Field("subnet", "Subnet (optional):", placeholder="e.g. 172.30.0.0/16; empty picks a free one",
                  required=False)), ok="Create"), done)

    def action_remove_network(self) -> None:
        net = self.selected
        if net is not None:
            self.dockui.confirm_then(f"Remove network {net.name} ({net.short_id})?", "Remove",
                                     f"network {net.name} removed", self.dockui.backend.remove_network, net.name)

    def action_connect(self) -> None:
        net = self.selected
        if net is None:
            return
        chosen = next((c.name for c in self.dockui.containers if c.id == self.dockui.selected_id), "")

        def done(values: dict[str, str] | None) -> None:
            if values:
                self.dockui.engine_call(f"{values['container']} connected to {net.name}", self.dockui.backend.connect,
                                        net.name, values["container"])

        self.app.push_screen(PromptDialog(f"Connect a container to {net.name}", (
            Field("container", "Container (name or ID):", chosen),), ok="Connect"), done)

    def action_disconnect(self) -> None:
        net = self.selected
        if net is None or not net.containers:
            return

        def done(values: dict[str, str] | None) -> None:
            if values:
                self.dockui.engine_call(f"{values['container']} disconnected from {net.name}",
                                        self.dockui.backend.disconnect, net.name, values["container"])

        self.app.push_screen(PromptDialog(f"Disconnect a container from {net.name} ({', '.join(net.containers)})", (
            Field("container", "Container (name or ID):", net.containers[0]),), ok="Disconnect"), done)

    def action_prune(self) -> None:
        unused = [n.name for n in self.networks if not n.builtin and not n.containers]
        if not unused:
            self.app.notify("no unused network to prune", timeout=3)
            return
        self.dockui.confirm_then(f"Remove every network no container uses?\n{', '.join(unused)}", "Prune",
                                 "pruned networks", self.dockui.backend.prune_networks)

    # ---- the tree

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
        return Text.assemble(("⇄ ", "bold"), (b.network or b.name, "bold"), f" ({b.name})  {b.subnet}  gw {b.gateway}  ",
                             (b.state, "italic"), f"  mtu {b.mtu}  {len(b.ports)} port(s)")

    @staticmethod
    def _port_label(p: PortView) -> Text:
        return Text.assemble(("◆ ", "bold"), (p.veth, "bold"), f"  ifindex {p.ifindex}  ", (p.state, "italic"))

    @staticmethod
    def _container_label(p: PortView) -> Text:
        return Text.assemble(("▣ ", "bold"), (p.container_name or p.container_id[:12], "bold"),
                             f"  {p.ifname} {p.ip}  {p.mac}  ",
                             f"rx {human_bytes(p.rx_rate, '/s')}  tx {human_bytes(p.tx_rate, '/s')}")

    @staticmethod
    def _details(p: PortView) -> list[Text]:
        out = [Text(f"port {x}") for x in p.published]
        out += [Text(f"link {_link(x)}") for x in p.links]
        return out
