"""Key bindings, remappable from a JSON file.

Every binding has a stable id (`dockui.<action>`); a file `{"stop": "X", "logs": "ctrl+l,L"}` (ids with
or without the `dockui.` prefix) replaces the keys through Textual's keymap. Looked up, first found
wins: `$DOCKUI_TUI_CONFIG`, `<root>/tui.json`, `/etc/dockui/tui.json`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from textual.binding import Binding

# action id -> (default keys, action method, description, shown in footer). The app-wide keys (help,
# quit, pull, run) are on the top line (tui/widgets/nav.py) instead: at 80 columns the footer has room
# for the selected container's keys only.
NAV_KEYS = ("pull", "run", "help", "quit")
DEFAULTS: dict[str, tuple[str, str, str, bool]] = {
    "help": ("question_mark", "app.help", "Help", False),
    "quit": ("q", "app.quit", "Quit", False),
    "screen_containers": ("1", "app.show('containers')", "Containers", False),
    "screen_images": ("2", "app.show('images')", "Images", False),
    "screen_network": ("3", "app.show('network')", "Network", False),
    "screen_detail": ("4", "app.show('detail')", "Detail", False),
    "screen_volumes": ("5", "app.show('volumes')", "Volumes", False),
    "screen_events": ("6", "app.show('events')", "Events", False),
    "container_events": ("E", "events_of", "Its events", False),  # the events screen, filtered by it
    "jump": ("colon", "app.jump", "Go to a view, as k9s's : (:images, :logs NAME, :q)", False),
    "pull": ("p", "app.pull", "Pull", False),
    "run": ("n", "app.run_dialog", "Run", False),
    "start": ("s", "container('start')", "Start", True),
    "stop": ("x", "container('stop')", "Stop", True),
    "restart": ("r", "container('restart')", "Restart", True),
    "kill": ("K", "container('kill')", "Kill", True),
    "kill_now": ("K", "kill_now", "Kill now", True),  # offered instead of Kill while a stop waits
    "pause": ("P", "container('pause')", "Pause", True),
    "remove": ("d", "container('remove')", "Remove", True),
    "logs": ("l", "detail('logs')", "Logs", True),
    "exec": ("e", "exec_shell", "Shell", True),
    "attach": ("a", "attach", "Attach", True),  # a container run with -i -t; ctrl-p ctrl-q comes back
    "inspect": ("i", "detail('inspect')", "Inspect", True),
    "mark": ("space", "mark", "Mark", False),
    "project": ("g", "mark_project", "Mark its compose project", False),  # then x/r/d act on the project
    "mark_all": ("A", "mark_all", "Mark all shown (the filter's rows); again: unmark", False),
    "copy_id": ("y", "copy('id')", "Copy ID (OSC 52)", False),
    "copy_name": ("Y", "copy('name')", "Copy name (OSC 52)", False),  # the footer is full at 80 columns; the marks bar and help say it
    "filter": ("slash", "filter", "Find", True),
    "sort": ("S", "sort", "Sort", True),
    "sort_reverse": ("R", "sort_reverse", "Reverse sort", False),
    "down": ("j", "cursor_down", "Down", False),
    "up": ("k", "cursor_up", "Up", False),
    "image_remove": ("d", "remove_image", "Remove image", True),
    "image_run": ("n", "run_image", "Run image", True),
    "image_history": ("h", "image_history", "History", True),
    "prune": ("X", "prune", "Prune", True),
    "volume_remove": ("d", "remove_volume", "Remove volume", True),
    "network_create": ("c", "create_network", "New network", True),
    "network_remove": ("d", "remove_network", "Remove network", True),
    "network_connect": ("a", "connect", "Connect", True),
    "network_disconnect": ("D", "disconnect", "Disconnect", True),
    "timestamps": ("t", "toggle_timestamps", "Time", True),
    "follow": ("f", "toggle_follow", "Follow", True),
    "wrap": ("w", "toggle_wrap", "Wrap", True),
    "search": ("slash", "search", "Search", True),
    "log_filter": ("ampersand", "log_filter", "Only the lines containing… (less's &)", False),
    "log_save": ("o", "save_log", "Save log to a file", False),
    # n and N as in less, vim and k9s; n is the app's run key whenever no search is active on the Logs tab
    "search_next": ("n", "search_next", "Next match", False),
    "search_prev": ("N", "search_prev", "Previous match", False),
    "back": ("escape", "back", "Back", True),
    "tab_prev": ("left_square_bracket", "tab(-1)", "Previous tab", False),  # lazydocker's [ and ]
    "tab_next": ("right_square_bracket", "tab(1)", "Next tab", False),
    "dismiss": ("z", "app.dismiss_notices", "Dismiss", True),  # shown while a notice stays on screen
}


# Which actions are live together: the app's everywhere, plus each screen's own. Two of them on one
# key hide each other, so a remapping that does that is reported (kill and kill_now share K by
# design: a screen offers one or the other, never both; run and search_next share n the same way,
# search_next being offered only while a log search is active).
SCREEN_ACTIONS: dict[str, tuple[str, ...]] = {
    "app": ("help", "quit", "screen_containers", "screen_images", "screen_network", "screen_detail",
            "screen_volumes", "screen_events", "jump", "pull", "run", "dismiss"),
    "containers": ("start", "stop", "restart", "kill", "kill_now", "pause", "remove", "logs", "exec", "attach",
                   "inspect", "mark", "mark_all", "project", "copy_id", "copy_name", "container_events", "filter", "sort",
                   "sort_reverse", "prune"),
    "detail": ("back", "timestamps", "follow", "wrap", "search", "search_next", "search_prev", "log_filter", "start",
               "stop", "restart", "kill", "kill_now", "pause", "remove", "exec", "attach", "inspect", "logs",
               "copy_id", "copy_name", "log_save", "container_events", "tab_prev", "tab_next"),
    "images": ("image_remove", "image_run", "image_history", "prune", "filter", "copy_id", "copy_name", "down", "up"),
    "network": ("network_create", "network_remove", "network_connect", "network_disconnect", "prune", "copy_id",
                "copy_name", "down", "up"),
    "volumes": ("volume_remove", "prune", "filter", "copy_id", "copy_name", "down", "up"),
    "events": ("filter", "down", "up"),
}
SCREEN_TITLES = {"app": "Everywhere", "containers": "Containers (1)", "detail": "Container detail (4)",
                 "images": "Images (2)", "network": "Network (3)", "volumes": "Volumes (5)", "events": "Events (6)"}

# Keys a screen's widgets take themselves (no binding of ours, not remappable): help lists them with
# the screen's bindings so that `?` names every key of the screen in view.
WIDGET_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "containers": (("↑ ↓ j k", "Move"), ("PgUp PgDn", "Page"), ("Home End G", "First row, last row"),
                   ("enter", "Open the detail (Stats)"), ("esc", "Clear the filter, then the marks"),
                   ("click", "Sort by a column's header")),
    "detail": (("↑ ↓", "Scroll the log or the tree (after l or i)"), ("End", "Follow the log again"),
               ("Home", "The log's first line (stops following)"), ("tab", "The tabs, then the tab's content")),
    "images": (("↑ ↓", "Move"), ("tab", "To the layers and back"), ("esc", "Clear the filter")),
    "network": (("↑ ↓", "Move"), ("tab", "To the tree and back"), ("enter", "Fold or unfold a tree node")),
    "volumes": (("↑ ↓", "Move"), ("esc", "Clear the filter")),
    "events": (("↑ ↓", "Move (the end follows new events)"), ("esc", "Clear the filter")),
}

# What a shared action does on each screen, where its one description would be vague.
SCREEN_HELP: dict[tuple[str, str], str] = {
    ("prune", "containers"): "Prune: remove the stopped containers (asks)",
    ("prune", "images"): "Prune: remove the dangling images (asks)",
    ("prune", "network"): "Prune: remove the networks no container uses (asks)",
    ("prune", "volumes"): "Prune: remove the volumes no container uses (asks)",
    ("filter", "containers"): "Filter (name, image, status, label=v, project=P)",
    ("filter", "images"): "Filter (repository, tag, ID, a container using it)",
    ("filter", "volumes"): "Filter (name, driver, a container using it)",
    ("filter", "events"): "Filter (name, ID, action, type)",
    ("search", "detail"): "Search the log (Logs tab)",
    ("copy_id", "images"): "Copy the full image ID (OSC 52)",
    ("copy_name", "images"): "Copy repository:tag (OSC 52)",
    ("copy_id", "network"): "Copy the network's full ID (OSC 52)",
    ("copy_name", "network"): "Copy the network's name (OSC 52)",
    ("copy_id", "volumes"): "Copy the volume's name (it has no ID; OSC 52)",
    ("copy_name", "volumes"): "Copy the volume's name (OSC 52)",
    ("mark", "containers"): "Mark and move down; keys then act on all marked",
    ("timestamps", "detail"): "Timestamps on/off (Logs tab)",
    ("follow", "detail"): "Follow the end on/off (Logs tab)",
    ("wrap", "detail"): "Wrap long lines on/off (Logs tab)",
    ("back", "detail"): "Back (or close the box, clear the search, or &)",
    ("search_next", "detail"): "Next match (while searching; else n is Run)",
    ("search_prev", "detail"): "Previous match",
}


def help_text(action_id: str, screen: str | None) -> str:
    return SCREEN_HELP.get((action_id, screen or ""), DEFAULTS[action_id][2])


SHARED_BY_DESIGN = (frozenset({"kill", "kill_now"}), frozenset({"run", "search_next"}))


def conflicts(keymap: dict[str, str]) -> list[str]:
    """Each key that two live actions of one screen share after the remapping, in words."""
    found = []
    for screen, own in SCREEN_ACTIONS.items():
        if screen == "app":
            continue
        by_key: dict[str, list[str]] = {}
        for action_id in dict.fromkeys((*SCREEN_ACTIONS["app"], *own)):
            keys = keymap.get(f"dockui.{action_id}", DEFAULTS[action_id][0])
            for key in keys.split(","):
                by_key.setdefault(key.strip(), []).append(action_id)
        for key, ids in by_key.items():
            if len(ids) > 1 and set(ids) not in SHARED_BY_DESIGN and any(f"dockui.{i}" in keymap for i in ids):
                found.append(f"{describe(key)} is bound to {' and '.join(ids)} on the {screen} screen: "
                             "only one of them works")
    return found


def binding(action_id: str, show: bool | None = None, priority: bool = False) -> Binding:
    keys, action, description, shown = DEFAULTS[action_id]
    return Binding(keys, action, description, show=shown if show is None else show,
                   id=f"dockui.{action_id}", priority=priority)


def bindings(*action_ids: str) -> list[Binding]:
    return [binding(a) for a in action_ids]


def config_paths(root: Path | None) -> list[Path]:
    paths = []
    if os.environ.get("DOCKUI_TUI_CONFIG"):
        paths.append(Path(os.environ["DOCKUI_TUI_CONFIG"]))
    if root is not None:
        paths.append(Path(root) / "tui.json")
    paths.append(Path("/etc/dockui/tui.json"))
    return paths


def load_keymap(root: Path | None) -> tuple[dict[str, str], str | None]:
    """(Textual keymap, problem in words or None). A broken file never stops the app."""
    for path in config_paths(root):
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
            keys = data.get("keys", data) if isinstance(data, dict) else None
            if not isinstance(keys, dict):
                raise ValueError("expected an object mapping actions to keys")
        except (OSError, ValueError) as exc:
            return {}, f"{path}: {exc}"
        keymap: dict[str, str] = {}
        unknown = []
        for name, value in keys.items():
            action_id = name.removeprefix("dockui.")
            if action_id not in DEFAULTS or not isinstance(value, str):
                unknown.append(name)
                continue
            keymap[f"dockui.{action_id}"] = value
        problems = [f"unknown actions {', '.join(unknown)}"] if unknown else []
        problems += conflicts(keymap)
        return keymap, (f"{path}: {'; '.join(problems)}" if problems else None)
    return {}, None


def describe(keys: str) -> str:
    names = {"question_mark": "?", "slash": "/", "escape": "esc", "left_square_bracket": "[",
             "right_square_bracket": "]", "colon": ":", "ampersand": "&"}
    return ",".join(names.get(k, k) for k in keys.split(","))
