"""Output helpers shared by the verbs: JSON for machines, aligned tables for people, and `--format`
templates as the docker CLI applies them (render_format for list verbs, print_formatted for inspect,
render_template for one object: events, df rows; print_template for info and version). The template
engine (engine.util.gotemplate) is imported only when a template is given, so `dockui run` never
loads it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence

from engine.errors import DockuiError
from engine.util.units import human_duration as human_duration  # re-exported: the verbs print with it
from engine.util.units import human_size as human_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: see docs/lifecycle.md
if TYPE_CHECKING:
    from typing import Any


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=4)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], gap: int = 3, minwidth: int = 10) -> None:
    """Print columns as docker's tables are (its tabwriter: each column as wide as its widest cell
    plus `gap`, at least `minwidth`; the last column is not padded)."""
    from engine.util.tabwriter import tabwrite

    lines = ["\t".join(str(c) for c in row) for row in [headers, *rows]]
    sys.stdout.write(tabwrite("\n".join(lines) + "\n", minwidth=minwidth, padding=gap))


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """The docker CLI's sortorder.NaturalLess as a sort key (ls and port orders): runs of digits
    compare as numbers."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def print_pruned(title: str, removed: Iterable[str], freed: int) -> None:
    """A prune's report as the docker CLI prints it: the removed (if any) under `title`, then the
    space reclaimed."""
    print_removed(title, removed)
    print(f"Total reclaimed space: {human_size(freed)}")


def print_removed(title: str, removed: Iterable[str]) -> None:
    """One section of a prune's report: `title` then each removed and a blank line; nothing when
    none was (`system prune` prints one per kind before its single total)."""
    removed = list(removed)
    if removed:
        print(title)
        for item in removed:
            print(item)
        print()


def print_formatted(results: list[Any], template: str | None) -> int:
    """`inspect`'s output, as docker's inspect.Inspect: all objects as one JSON array, or each through
    the `--format` template over its JSON (docker's second try: an unknown key is an error). Objects
    the template fails on are reported on stderr after the others are printed; returns the exit
    status (1 if any failed). A template that does not parse: FormatError, status 64."""
    if not template:
        print_json(results)
        return 0
    from engine.cli.formatters import inspect_value
    from engine.util import gotemplate

    parsed = _parse(template, status=64)
    out, errors = [], []
    for obj in results:
        try:
            out.append(parsed.execute(inspect_value(obj), inspect=True) + "\n")
        except gotemplate.ExecError as exc:
            errors.append(f"template parsing error: {exc}")
    sys.stdout.write("".join(out) or "\n")
    sys.stdout.flush()
    for message in errors:
        print(message, file=sys.stderr)
    return 1 if errors else 0


class FormatError(DockuiError):
    """A `--format` template docker would refuse: its message as docker prints it (bare, as the
    docker CLI prints Go's error: engine.cli.report adds no "Error: "), and its status (1 for
    list verbs and a template that fails as it runs, 64 for one of inspect, info or version that
    does not parse)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _parse(template: str, status: int = 1, prefix: str = "template parsing error: ", name: str = "",
           funcs: dict[str, Any] | None = None) -> Any:
    from engine.util import gotemplate

    try:
        return gotemplate.parse(template, name=name, funcs=funcs)
    except gotemplate.TemplateError as exc:
        raise FormatError(f"{prefix}{exc}", status) from None


def render_format(template: str, rows: Iterable[Any], headers: Any = None, *, parse_status: int = 1) -> str:
    """docker/cli's formatter.Context.Write: the text for `--format TEMPLATE` over `rows`, one line
    (or more) per row, each ending in a newline.

    A template starting with `table` gets a header (the template run over `headers`, the column
    titles by field name: engine.cli.formatters.HeaderContext) and its tab-separated cells aligned
    as Docker's tabwriter does (min width 10, padding 3); `\\t` and `\\n` in the text are a tab and
    a newline. Rows are engine.util.gotemplate.TemplateData objects or plain values (dicts).
    A template that does not parse, or fails on a row: FormatError (`template parsing error: ...`,
    status 1, `parse_status` for a parse error)."""
    from engine.util import gotemplate

    table = template.startswith("table")
    text = template[len("table"):] if table else template
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    parsed = _parse(text, status=parse_status)
    body = []
    for row in rows:
        try:
            body.append(parsed.execute(row) + "\n")
        except gotemplate.ExecError as exc:
            raise FormatError(f"template parsing error: {exc}") from None
    if not table:
        return "".join(body)
    from engine.util.gofmt import GoMap
    from engine.util.tabwriter import tabwrite

    try:  # docker ignores a header's error and prints what was written before it
        header = parsed.execute(headers if headers is not None else GoMap(), funcs=gotemplate.HEADER_FUNCS)
    except gotemplate.ExecError as exc:
        header = exc.partial
    return tabwrite(header + "\n" + "".join(body), minwidth=10, padding=3)


def check_format(template: str, sample: Any) -> None:
    """docker ps's check before it lists anything: `template` parses and runs on `sample` (an empty
    row), so a bad template fails even when nothing matches. FormatError, status 1."""
    from engine.util import gotemplate

    parsed = _parse(template, prefix="failed to parse template: ")
    try:
        parsed.execute(sample)
    except gotemplate.ExecError as exc:
        raise FormatError(f"failed to execute template: {exc}") from None


def render_template(template: str, obj: Any, *, name: str = "", parse_status: int = 1,
                    parse_prefix: str = "template parsing error: ") -> str:
    """One object through a Go template (docker's text/template, engine.util.gotemplate), as docker's
    events and system df apply `--format` (info and version: print_template): the output without a
    trailing newline. A template that
    does not parse: FormatError(parse_prefix + Go's message, parse_status) (docker 20.10: info and
    version 64 with "template parsing error: ", version's template named "version"; events 64 with
    "Error parsing format: "); one that fails on `obj`: FormatError(Go's message, 1)."""
    from engine.util import gotemplate

    parsed = _parse(template, status=parse_status, prefix=parse_prefix, name=name)
    try:
        return parsed.execute(obj)
    except gotemplate.ExecError as exc:
        raise FormatError(str(exc)) from None  # docker prints these unwrapped


def print_template(template: str, obj: Any, *, go_type: str = "", name: str = "",
                   funcs: dict[str, Any] | None = None, aligned: bool = False) -> None:
    """docker's info and version `--format`: the template (`json` is `{{json .}}`; named `name`:
    version's is "version", with version's `funcs`) over `obj` (typed TemplateData, or a dict read as the Go struct
    `go_type`: system.dockerInfo; Go's errors name it), printed with a newline, which the docker CLI
    writes even when the template fails (after what it wrote so far); `aligned`: through version's
    tabwriter (minwidth 20, padding 1). The failure is then FormatError(Go's words, 1), one that
    does not parse FormatError("template parsing error: ...", 64)."""
    from engine.cli.formatters import OmitEmptyStruct
    from engine.util import gotemplate

    parsed = _parse("{{json .}}" if template.strip() == "json" else template, status=64, name=name, funcs=funcs)
    data = OmitEmptyStruct(go_type, obj, obj) if isinstance(obj, dict) else obj
    failure = None
    try:
        text = parsed.execute(data)
    except gotemplate.ExecError as exc:
        text, failure = exc.partial, FormatError(str(exc))
    if aligned:
        from engine.util.tabwriter import tabwrite

        text = tabwrite(text + "\n", minwidth=20, padding=1)[:-1]
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    if failure is not None:
        raise failure from None
