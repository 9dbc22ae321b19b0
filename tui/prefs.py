"""What the session remembers across restarts: the theme chosen in the command palette.

Kept in `<root>/tui-state.json`, apart from the user's key file (`tui.json`, which the app only
reads): the app writes this one whenever the theme changes. An unreadable or foreign file is
ignored, never fatal; a theme Textual does not know falls back to the default.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.util.fsutil import atomic_write_json

STATE_FILE = "tui-state.json"


def load_theme(root: Path) -> str | None:
    try:
        data = json.loads((Path(root) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) else None


def save_theme(root: Path, theme: str) -> str | None:
    """Remember the theme; a problem in words (an unwritable root), or None."""
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(root) / STATE_FILE, {"theme": theme})
    except OSError as exc:
        return f"the theme is not kept for the next session: {exc}"
    return None
