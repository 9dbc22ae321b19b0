"""Go's text/tabwriter (flags 0, left-aligned, space padding), as docker aligns its tables.

Owns the column rule Docker's output follows: text is cut into cells at tabs and lines at newlines; a
column is a run of consecutive lines that have a tab-terminated cell at that position, and every
cell in it is padded to the column's width: max(minwidth, widest cell + padding). A line's last cell
(not tab-terminated) is never padded, so a line with no tab ends every column above it. Widths
count runes, as Go does. Only the standard library is imported.
"""

from __future__ import annotations


def tabwrite(text: str, minwidth: int, padding: int) -> str:
    """`text` laid out as tabwriter.NewWriter(out, minwidth, tabwidth, padding, ' ', 0) writes it."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format(lines, 0, len(lines), [], minwidth, padding, out)
    return "\n".join(out)


def _format(
    lines: list[list[str]], line0: int, line1: int, widths: list[int], minwidth: int, padding: int, out: list[str]
) -> None:
    """Go's Writer.format: find each block of lines sharing the next column, size it, recurse."""
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, [*widths, width], minwidth, padding, out)
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
    for cells in lines[line0:line1]:
        parts = []
        for j, cell in enumerate(cells):
            parts.append(cell.ljust(widths[j]) if j < len(widths) else cell)
        out.append("".join(parts))
