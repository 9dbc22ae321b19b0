"""Inspect JSON as a foldable tree: top-level sections start open, nested ones folded."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode


class JsonTree(Tree[Any]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("inspect", id=id)
        self.show_root = False
        self.guide_depth = 2
        self._data: Any = None

    def set_data(self, data: Any) -> None:
        if data == self._data:
            return
        self._data = data
        self.clear()
        self._add(self.root, data, depth=0)
        self.root.expand()

    def _add(self, node: TreeNode[Any], value: Any, depth: int) -> None:
        if isinstance(value, dict):
            items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
        else:
            items = [(f"[{i}]", v) for i, v in enumerate(value)]
        for key, child in items:
            if isinstance(child, (dict, list)) and child:
                size = f"{{{len(child)}}}" if isinstance(child, dict) else f"[{len(child)}]"
                branch = node.add(Text.assemble((key, "bold"), " ", (size, "dim")), data=child)
                self._add(branch, child, depth + 1)
                if depth == 0:
                    branch.expand()
            else:
                node.add_leaf(Text.assemble((key, "bold"), ": ", json.dumps(child)), data=child)
