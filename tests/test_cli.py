"""The console entry point: global options, usage errors and exit codes."""

from __future__ import annotations

import subprocess
import sys


def dockui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.launcher", *args], capture_output=True, text=True)


def test_version() -> None:
    result = dockui("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dockui ")


def test_unknown_verb_is_a_usage_error_with_status_1() -> None:
    result = dockui("no-such-verb")  # docker: "unknown command", a plain error: status 1
    assert result.returncode == 1
    assert "invalid choice" in result.stderr


def test_launcher_tells_verbs_from_global_options() -> None:
    from tui.launcher import _has_verb

    assert not _has_verb([])
    assert not _has_verb(["--root", "/tmp/x", "--log-level", "debug"])
    assert not _has_verb(["--root=/tmp/x"])
    assert _has_verb(["--root", "/tmp/x", "ps"])
    assert _has_verb(["--help"])


def test_global_bip_reaches_the_engine_config() -> None:
    from engine.cli import build_parser, config_from_args

    args = build_parser().parse_args(["--bip", "172.18.0.1/16", "--root", "/tmp/x", "ps"])
    config = config_from_args(args)
    assert config.bridge_ip == "172.18.0.1/16"
    assert str(config.root) == "/tmp/x"


def test_parser_builds_only_the_groups_up_to_the_verb() -> None:
    from engine.cli import build_parser, find_verb

    assert find_verb(["--root", "/r", "--bip=10.0.0.1/24", "-q", "ps", "-a"]) == "ps"
    assert find_verb(["--log-level", "debug"]) is None

    def verbs(parser: object) -> set[str]:
        return set(parser._subparsers._group_actions[0].choices)  # type: ignore[attr-defined]

    everything = verbs(build_parser())
    assert verbs(build_parser("ps")) == {"ps"}  # a top-level container verb: only its own parser
    assert verbs(build_parser("run")) == {"run"}
    assert build_parser("run").parse_args(["run", "--rm", "busybox", "true"]).command == ["true"]
    assert verbs(build_parser("volume")) == {"volume"}  # a group of the container verbs' module: itself only
    assert verbs(build_parser("container")) == {"container"}
    assert {"ps", "run", "container", "volume", "stats", "pull", "network"} <= everything
    assert verbs(build_parser("version")) == {"events", "info", "system", "version"}  # its module's only (VERB_OWNERS)
    assert {"system", "info", "version", "events"} <= everything - verbs(build_parser("stats"))
    assert build_parser("pull").parse_args(["pull", "-q", "busybox"]).verb == "pull"
    assert verbs(build_parser("no-such-verb")) == everything  # the usage error lists every verb


def test_format_templates_follow_docker() -> None:
    import pytest

    from engine.cli.output import FormatError, render_format, render_template

    obj = {"Id": "abc", "State": {"Running": True, "Pid": 7}, "Config": {"Env": ["A=1"]}, "Gone": None}
    assert render_template("{{.Id}}\t{{.State.Pid}} {{.State.Running}}", obj) == "abc\t7 true"
    assert render_format("{{.Id}}\\t{{.State.Pid}}", [obj]) == "abc\t7\n"  # list verbs read \t as a tab
    assert render_template("{{json .Config.Env}}", obj) == '["A=1"]'
    assert render_template("{{.Gone}}", obj) == "<nil>"
    with pytest.raises(FormatError, match="can't evaluate field Nope"):
        render_template("{{.State.Nope}}", obj)


def test_long_options_are_never_abbreviated() -> None:
    """docker refuses `--pid` when it means `--pids-limit`, and so must we (argparse would guess)."""
    import pytest

    from engine.cli import build_parser

    for argv in (["run", "--pids", "5", "busybox"], ["ps", "--form", "json"], ["network", "ls", "--no-t"],
                 ["stats", "--no-str"], ["image", "ls", "--dig"], ["volume", "ls", "--qui"]):
        with pytest.raises(SystemExit) as caught:
            build_parser(argv[0]).parse_args(argv)
        assert caught.value.code == 125, argv
    assert build_parser("run").parse_args(["run", "--pids-limit", "5", "busybox"]).pids_limit == 5
