"""The TUI's resource screens and bulk actions on the real engine (issue #14): networks (the tree's
interfaces and links, the list's create/connect/disconnect/remove/prune), volumes (users, a refused
removal that stays on screen, prune), images (used by, remove with force, history, filter, prune),
marks with one confirmation, the pull dialog after a failure, run-dialog errors in view, remapped
keys that clash, the theme across restarts. Everything needs root and removes what it made."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from engine.api import images as api_images
from engine.api import networks as api_networks
from engine.api import volumes as api_volumes
from engine.container import state
from engine.errors import NotFound
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - fixture
from tests.test_tui_live import STOPPABLE, _import_busybox_as, _notes, _select, _table
from tests.tui_helpers import run_async, settle, until
from tui.app import DockuiApp
from tui.screens.dialogs import ConfirmDialog
from tui.screens.pull import pull_error_text

pytestmark = pytest.mark.root


def _tree_nodes(app: DockuiApp) -> list[tuple[str, list[str]]]:
    """(label, labels of every node below it) for each network node of the tree."""
    tree = app.screen.query_one("#net-tree")
    out = []
    for bridge in tree.root.children:
        below, stack = [], list(bridge.children)
        while stack:
            node = stack.pop()
            below.append(str(node.label))
            stack.extend(node.children)
        out.append((str(bridge.label), below))
    return out


def _rows(app: DockuiApp, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def _cursor_to(app: DockuiApp, table_id: str, first_cell: str) -> bool:
    rows = [row[0] for row in _rows(app, table_id)]
    if first_cell not in rows:
        return False
    app.screen.query_one(table_id, DataTable).move_cursor(row=rows.index(first_cell))
    return True


async def _answer(pilot, app: DockuiApp, fields: dict[str, str]) -> None:  # noqa: ANN001
    """Fill the open prompt dialog and press enter."""
    assert await until(pilot, lambda: type(app.screen).__name__ == "PromptDialog")
    for key, value in fields.items():
        app.screen.query_one(f"#prompt-{key}", Input).value = value
    await pilot.press("enter")


async def _confirm(pilot, app: DockuiApp) -> str:  # noqa: ANN001
    """Say yes to the open confirmation; its question."""
    assert await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
    question = app.screen.question
    await pilot.press("y")
    return question


# ---- networks


@run_async
async def test_network_tree_names_networks_shows_the_real_interface_and_links_only_where_both_are(
        engine: Engine) -> None:
    net = f"tuinet-{secrets.token_hex(2)}"
    engine.out("run", "-d", "--name", "tui-db", "busybox", *STOPPABLE)
    engine.out("run", "-d", "--name", "tui-web", "--link", "tui-db:database", "busybox", *STOPPABLE)
    engine.out("network", "create", net)
    try:
        engine.out("network", "connect", net, "tui-web")  # tui-db is not on it: no link may show there
        address = next(i.ip for i in api_networks.topology(engine.config).interfaces.values()
                       if i.container_name == "tui-web" and i.network == net)
        app = DockuiApp(engine.config, refresh_interval=0.3)
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot)
            await pilot.press("3")
            assert await until(pilot, lambda: any(label.startswith(f"⇄ {net} (br-") for label, _ in _tree_nodes(app)),
                               timeout=10)
            nodes = dict(_tree_nodes(app))
            user = next(below for label, below in nodes.items() if label.startswith(f"⇄ {net} "))
            default = next(below for label, below in nodes.items() if label.startswith("⇄ bridge "))
            assert any(f"tui-web  eth1 {address}/" in label for label in user), user
            assert not any(label.startswith("link") for label in user), user
            assert any("tui-web  eth0 " in label for label in default), default
            assert "link tui-db as database" in default, default
    finally:
        engine.cli("rm", "-f", "tui-web", "tui-db")
        engine.cli("network", "rm", net)


@run_async
async def test_networks_list_creates_connects_disconnects_removes_and_prunes(engine: Engine) -> None:
    net, spare = f"tuilist-{secrets.token_hex(2)}", f"tuispare-{secrets.token_hex(2)}"
    engine.out("run", "-d", "--name", "tui-c", "busybox", *STOPPABLE)

    def attached() -> set[str]:
        return {i.network for i in api_networks.topology(engine.config).interfaces.values()
                if i.container_name == "tui-c"}

    def names() -> set[str]:
        return {n["Name"] for n in api_networks.list_networks(engine.config)}

    try:
        app = DockuiApp(engine.config, refresh_interval=0.3)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            await pilot.press("3")
            await settle(pilot)
            await pilot.press("c")
            await _answer(pilot, app, {"name": net})
            assert await until(pilot, lambda: net in names(), timeout=15)
            assert await until(pilot, lambda: _cursor_to(app, "#networks", net))
            await pilot.press("a")
            await _answer(pilot, app, {"container": "tui-c"})
            assert await until(pilot, lambda: net in attached(), timeout=15)
            assert await until(pilot, lambda: _cursor_to(app, "#networks", net) and
                               _rows(app, "#networks")[[r[0] for r in _rows(app, "#networks")].index(net)][3] == "1: tui-c")
            await pilot.press("D")
            await _answer(pilot, app, {})  # the dialog names the attached container already
            assert await until(pilot, lambda: net not in attached(), timeout=15)
            assert await until(pilot, lambda: _cursor_to(app, "#networks", net) and app.screen.selected.containers == ())
            await pilot.press("d")
            assert net in await _confirm(pilot, app)
            assert await until(pilot, lambda: net not in names(), timeout=15)
            engine.out("network", "create", spare)
            assert await until(pilot, lambda: spare in [r[0] for r in _rows(app, "#networks")])
            await pilot.press("X")
            assert spare in await _confirm(pilot, app)
            assert await until(pilot, lambda: spare not in names(), timeout=15)
            assert "bridge" in names() and attached() == {"bridge"}
    finally:
        engine.cli("rm", "-f", "tui-c")
        for name in (net, spare):
            engine.cli("network", "rm", name)


# ---- volumes


@run_async
async def test_volumes_screen_shows_users_keeps_a_refusal_on_screen_removes_and_prunes(engine: Engine) -> None:
    for name in ("tui-used", "tui-free", "tui-stale"):
        engine.out("volume", "create", name)
    engine.out("run", "-d", "--network", "none", "--name", "tui-v", "-v", "tui-used:/data", "busybox", *STOPPABLE)

    def volumes() -> set[str]:
        return {v.name for v in api_volumes.list_volumes(engine.config)}

    try:
        app = DockuiApp(engine.config, refresh_interval=0.3)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            await pilot.press("5")
            assert await until(pilot, lambda: {"tui-used", "tui-free"} <= {r[0] for r in _rows(app, "#volumes")})
            used = next(r for r in _rows(app, "#volumes") if r[0] == "tui-used")
            assert used[3] == "tui-v"
            assert _cursor_to(app, "#volumes", "tui-used")
            mountpoint = api_volumes.inspect(engine.config, "tui-used")["Mountpoint"]
            assert await until(pilot, lambda: mountpoint in str(app.screen.query_one("#volume-detail").render()))
            await pilot.press("d")
            assert "tui-v" in await _confirm(pilot, app)
            assert await until(pilot, lambda: any("in use" in n for n in _notes(app)), timeout=15)
            await pilot.pause(6)  # a toast would be gone by now
            assert any("in use" in n for n in _notes(app)) and "tui-used" in volumes()
            assert any("(used by tui-v)" in n for n in _notes(app)), _notes(app)  # by name, not only the ID
            await pilot.press("z")
            assert await until(pilot, lambda: not app._notifications)
            assert _cursor_to(app, "#volumes", "tui-free")
            await pilot.press("d")
            await _confirm(pilot, app)
            assert await until(pilot, lambda: "tui-free" not in volumes(), timeout=15)
            assert await until(pilot, lambda: "tui-stale" in {r[0] for r in _rows(app, "#volumes")} and
                               "tui-free" not in {r[0] for r in _rows(app, "#volumes")})
            await pilot.press("X")
            assert "tui-stale" in await _confirm(pilot, app)
            assert await until(pilot, lambda: "tui-stale" not in volumes(), timeout=15)
            assert "tui-used" in volumes()
    finally:
        engine.cli("rm", "-f", "tui-v")
        for name in ("tui-used", "tui-free", "tui-stale"):
            engine.cli("volume", "rm", name)


# ---- marks and bulk actions


@run_async
async def test_marked_containers_stop_together_and_remove_after_one_confirmation(engine: Engine) -> None:
    names = ("tui-m1", "tui-m2", "tui-m3")
    for name in names:
        engine.out("run", "-d", "--network", "none", "--name", name, "busybox", *STOPPABLE)
    app = DockuiApp(engine.config, refresh_interval=0.3)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            assert await until(pilot, lambda: all(_select(app, n) for n in names))
            for name in names:
                assert _select(app, name)
                await pilot.press("space")
            assert _table(app).marked == {c.id for c in _table(app).views if c.name in names}
            await pilot.press("x")
            assert await until(pilot, lambda: all(state.find_container(engine.config, n).status == "exited"
                                                  for n in names), timeout=20)
            assert not _table(app).marked  # an action clears the marks
            assert await until(pilot, lambda: all(c.status == "exited" for c in _table(app).views if c.name in names))
            for name in names[:2]:
                assert _select(app, name)
                await pilot.press("space")
            await pilot.press("d")
            question = await _confirm(pilot, app)
            assert "tui-m1" in question and "tui-m2" in question and "tui-m3" not in question
            assert not isinstance(app.screen, ConfirmDialog)  # one question for both

            def left() -> set[str]:
                return {r.name for r in state.list_containers(engine.config)}

            assert await until(pilot, lambda: left() == {"tui-m3"}, timeout=20)
    finally:
        for name in names:
            engine.cli("rm", "-f", name)


# ---- images


@run_async
async def test_images_used_by_filter_history_force_remove_and_prune(engine: Engine, tmp_path: Path) -> None:
    _import_busybox_as(engine, tmp_path, "tui-solo:1", "bin/busybox", ("bin/sh", "bin/true"))
    engine.out("create", "--network", "none", "--name", "tui-img", "tui-solo:1", "true")
    dangling = engine.out("commit", "tui-img").strip()  # no tag: a dangling image

    def present(ref: str) -> bool:
        try:
            api_images.resolve(engine.config, ref)
        except NotFound:
            return False
        return True

    try:
        app = DockuiApp(engine.config, refresh_interval=0.3)
        async with app.run_test(size=(140, 36)) as pilot:
            await settle(pilot)
            await pilot.press("2")
            assert await until(pilot, lambda: "tui-solo" in [r[0] for r in _rows(app, "#images")])
            solo = next(r for r in _rows(app, "#images") if r[0] == "tui-solo")
            assert solo[6] == "tui-img"
            await pilot.press("slash")
            await pilot.press(*"solo")
            assert await until(pilot, lambda: [r[0] for r in _rows(app, "#images")] == ["tui-solo"])
            await pilot.press("enter")
            await pilot.press("h")
            assert await until(pilot, lambda: type(app.screen).__name__ == "HistoryDialog" and
                               app.screen.query_one("#history-table", DataTable).row_count >= 1, timeout=10)
            history = api_images.history(engine.config, "tui-solo:1")
            assert app.screen.query_one("#history-table", DataTable).row_count == len(history)
            await pilot.press("escape")
            await pilot.press("d")
            question = await _confirm(pilot, app)
            assert "tui-img" in question and "force" in question
            assert await until(pilot, lambda: not present("tui-solo:1"), timeout=15)
            assert state.find_container(engine.config, "tui-img").status == "created"  # kept, as rmi -f keeps it
            await pilot.press("escape")  # clears the filter
            assert await until(pilot, lambda: "<none>" in [r[0] for r in _rows(app, "#images")])
            await pilot.press("X")
            assert dangling.removeprefix("sha256:")[:12] in await _confirm(pilot, app)
            assert await until(pilot, lambda: not present(dangling), timeout=15)
            assert present("busybox")
    finally:
        engine.cli("rm", "-f", "tui-img")


# ---- pull and run dialogs


def test_pull_errors_are_sentences() -> None:
    """The engine's words for an unreachable registry (as engine/image/registry.py writes them)."""
    offline = ("cannot reach registry registry-1.docker.io: HTTPSConnectionPool(host='registry-1.docker.io', "
               "port=443): Max retries exceeded with url: /v2/ (Caused by NameResolutionError(\"<urllib3..>: "
               "Failed to resolve 'registry-1.docker.io' ([Errno -3] Temporary failure in name resolution)\"))")
    assert pull_error_text(offline) == ("cannot reach registry-1.docker.io (no network?): its name does not resolve",
                                        True)
    assert pull_error_text("cannot reach registry 127.0.0.1:9: Connection refused")[0].startswith(
        "cannot reach 127.0.0.1:9: nothing listens")
    assert pull_error_text("manifest unknown") == ("manifest unknown", False)


@run_async
async def test_a_failed_pull_gives_the_keys_back_to_the_reference_and_says_why(engine: Engine) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine.config.insecure_registries = [f"127.0.0.1:{port}"]
    app = DockuiApp(engine.config, refresh_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        assert await until(pilot, lambda: type(app.screen).__name__ == "PullDialog")
        ref = app.screen.query_one("#pull-ref", Input)
        ref.value = f"127.0.0.1:{port}/nothing:1"
        await pilot.press("enter")
        status = app.screen.query_one("#pull-status")
        assert await until(pilot, lambda: "cannot reach" in str(status.render()), timeout=60)
        assert "nothing listens" in str(status.render())
        assert app.screen.query_one("#pull-import").display
        assert app.focused is ref
        await pilot.press("backspace", "2")  # typing edits the reference
        assert ref.value == f"127.0.0.1:{port}/nothing:2"


@run_async
async def test_run_dialog_errors_are_scrolled_into_view_and_focused(engine: Engine) -> None:
    app = DockuiApp(engine.config, refresh_interval=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        assert await until(pilot, lambda: type(app.screen).__name__ == "RunDialog")
        dialog = app.screen
        dialog.query_one("#run-image", Input).value = "busybox"
        dialog.query_one("#run-links", Input).value = "-bad-"  # the last field: below the fold at 80x24
        await pilot.press("ctrl+r")
        error = dialog.query_one("#run-links-error")
        assert await until(pilot, lambda: error.display)
        await pilot.pause(0.2)
        scroll = dialog.query_one("#run")
        region = error.region
        assert scroll.region.contains_region(region), (region, scroll.region)
        assert app.focused is dialog.query_one("#run-links", Input)


# ---- keys and theme


@run_async
async def test_a_remapped_key_that_hides_another_is_reported(engine: Engine) -> None:
    (engine.config.root / "tui.json").write_text(json.dumps({"remove": "s"}))
    app = DockuiApp(engine.config, refresh_interval=0)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        notes = _notes(app)
        assert any("s is bound to start and remove on the containers screen" in n for n in notes), notes
        await pilot.pause(6)
        assert any("bound to start and remove" in n for n in _notes(app))  # stays until dismissed


@run_async
async def test_the_theme_is_kept_across_restarts(engine: Engine) -> None:
    app = DockuiApp(engine.config, refresh_interval=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme != "textual-light"
        app.theme = "textual-light"
        await pilot.pause()
    again = DockuiApp(engine.config, refresh_interval=0)
    async with again.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert again.theme == "textual-light"
    assert os.path.exists(engine.config.root / "tui-state.json")


@run_async
async def test_run_dialog_pulls_an_image_the_store_lacks_as_run_does(engine: Engine, busybox_in_registry: str) -> None:
    app = DockuiApp(engine.config, refresh_interval=0.3)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("n")
            assert await until(pilot, lambda: type(app.screen).__name__ == "RunDialog")
            dialog = app.screen
            dialog.query_one("#run-image", Input).value = busybox_in_registry
            dialog.query_one("#run-name", Input).value = "tui-pulled"
            dialog.query_one("#run-network", Input).value = "none"
            dialog.query_one("#run-command", Input).value = " ".join(["sleep", "60"])
            await pilot.press("ctrl+r")
            assert await until(pilot, lambda: type(app.screen).__name__ == "ContainersScreen", timeout=60), \
                str(dialog.query_one("#run-form-error").render())
        record = state.find_container(engine.config, "tui-pulled")
        assert record.status == "running"
        assert record.image_id == api_images.resolve(engine.config, busybox_in_registry).id
    finally:
        engine.cli("rm", "-f", "tui-pulled")
