"""Filling a DataTable in one go, and the cell that names the first few of a list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from textual.widgets import DataTable


def fill_table(table: DataTable, titles: Sequence[str], rows: Sequence[Sequence[Any]],
               keys: Sequence[str] | None = None) -> None:
    """Replace a table's columns and rows, with each column as wide as its widest cell.

    Setting the widths here, rather than letting DataTable measure new rows when it is next idle,
    draws the header and the rows with the same widths in the same frame.
    """
    table.clear(columns=True)
    for i, title in enumerate(titles):
        width = max([cell_len(str(title)), *(cell_len(str(row[i])) for row in rows)])
        table.add_column(title, width=width)
    for n, row in enumerate(rows):
        table.add_row(*row, key=keys[n] if keys else None)


def first_names(names: Sequence[str], shown: int = 2) -> str:
    """The first `shown` names, then how many more: `web, db +3` ("" for none)."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" +{more}" if more > 0 else "")
