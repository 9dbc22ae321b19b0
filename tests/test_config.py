"""The config file loader (engine/config.py): every key checked, every problem named at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import CONFIG_KEYS, EngineConfig, read_config_file
from engine.errors import InvalidConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(text)
    return path


def test_valid_file_sets_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"insecure_registries": ["r:5000"], "bridge_name": "br-x", "bridge_ip": "172.30.0.1/16",
              "cgroup_parent": "mine", "log_max_size": "20m", "log_max_file": 5, "registry_stall_timeout": 7,
              "dns_upstreams": ["192.0.2.53", "127.0.0.1:5353", "[::1]:53"], "no_new_privileges": True,
              "default_cgroupns_mode": "private"}
    assert set(values) == set(CONFIG_KEYS)
    monkeypatch.setenv("DOCKUI_CONFIG", str(_write(tmp_path, json.dumps(values))))
    config = EngineConfig.load(root=tmp_path / "root")
    assert (config.bridge_name, config.bridge_ip, config.cgroup_parent) == ("br-x", "172.30.0.1/16", "mine")
    assert config.insecure_registries == ["r:5000"] and config.registry_stall_timeout == 7.0
    assert config.default_log_opts() == {"max-size": "20m", "max-file": "5"}
    assert config.dns_upstreams == ["192.0.2.53", "127.0.0.1:5353", "[::1]:53"]
    assert config.no_new_privileges is True
    assert config.default_cgroupns_mode == "private"


def test_missing_and_empty_files_mean_defaults(tmp_path: Path) -> None:
    assert read_config_file(tmp_path / "absent.json") == {}
    assert read_config_file(_write(tmp_path, "  \n")) == {}
    assert EngineConfig().default_log_opts() == {"max-size": "10m", "max-file": "3"}


def test_every_problem_is_named_in_one_message(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps({"bridge_name": "a" * 16, "briged_ip": "x", "log_max_file": True}))
    with pytest.raises(InvalidConfig) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"invalid configuration file {path}: ")
    assert "'bridge_name' must be a name of 1 to 15 characters" in message
    assert "unknown key 'briged_ip' (did you mean 'bridge_ip'?)" in message
    assert "'log_max_file' must be a whole number of at least 1, not true" in message


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1,}', "line 1 column 9: Expecting property name"),
    ("[]", "the top level must be a JSON object, not a list"),
    ("null", "the top level must be a JSON object, not null"),
    ('{"registry_stall_timeout": 0}', "must be a number of seconds above 0, not 0"),
    ('{"log_max_size": 5}', None),  # a number of bytes is a size
    ('{"log_max_size": ""}', None),  # unbounded, as Docker's default
    ('{"default_cgroupns_mode": "shared"}', "'default_cgroupns_mode' must be \"host\" or \"private\", not \"shared\""),
    ('{"default_cgroupns_mode": ""}', None),  # Docker's rule by cgroup version
])
def test_values(tmp_path: Path, text: str, expected: str | None) -> None:
    path = _write(tmp_path, text)
    if expected is None:
        read_config_file(path)
        return
    with pytest.raises(InvalidConfig, match=expected):
        read_config_file(path)


def test_a_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="is a directory"):
        read_config_file(tmp_path)
