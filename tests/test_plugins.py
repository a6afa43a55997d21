"""The plugin system: entry-point loading, overriding defaults, loud failures (the hook docs have their own test,
test_plugin_hook_docs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.plugins.failing_ops import BrokenInit, OpOverrides
from wvs_core import hookimpl
from wvs_core.cli.wvs import cli
from wvs_core.config import PluginsConfig
from wvs_core.errors import ConfigError
from wvs_core.plugins import PluginRegistry, make_plugin_manager

BIN = Path(sys.executable).parent
NO_CONFIG = {key: value for key, value in os.environ.items() if key != "WVS_CONFIG"}


def test_defaults_load_through_entry_points() -> None:
    registry = PluginRegistry.load(PluginsConfig())
    assert {"juicefs", "localfs"} <= set(registry.storage_backends)
    assert {"control-json", "none"} <= set(registry.quiesce_protocols)
    assert "postgres" in registry.queues
    assert {"init_workspace", "snapshot_create"} <= set(registry.ops)
    assert "log" in registry.notifiers
    distributions = {name for name, _ in (p for p in registry.pm.list_plugin_distinfo())}
    assert len(distributions) >= 6, "the defaults must come in as entry-point plugins"


def test_an_installed_plugin_overrides_a_default_by_name() -> None:
    broken = BrokenInit()
    registry = PluginRegistry.load(PluginsConfig(), extra=[OpOverrides(broken)])
    assert registry.ops["init_workspace"] is broken


def test_a_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def wvs_register_opps(self) -> list[object]:
            return []

    with pytest.raises(ConfigError, match="wvs_register_opps"):
        make_plugin_manager(extra=[Typo()])


def test_config_names_an_unknown_plugin() -> None:
    with pytest.raises(ConfigError, match=r"plugins.storage: no plugin provides 'zfs' \(available: juicefs, localfs"):
        PluginRegistry.load(PluginsConfig(storage="zfs"))
    with pytest.raises(ConfigError, match=r"plugins\.modules"):
        PluginRegistry.load(PluginsConfig(modules=["no_such_module_here"]))


def test_plugin_modules_from_config_are_loaded() -> None:
    registry = PluginRegistry.load(PluginsConfig(modules=["tests.plugins.extra_notifier"]))
    assert "memory" in registry.notifiers


def test_wvs_plugins_lists_what_is_loaded_and_from_where() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"], env={"WVS_CONFIG": ""})
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["juicefs"]["module"] == "wvs_juicefs"
    assert rows["juicefs"]["distribution"].startswith("wvs ")
    assert rows["juicefs"]["file"].endswith("wvs_juicefs/__init__.py")
    assert "storage:juicefs" in rows["juicefs"]["provides"]
    assert "op:snapshot_create" in rows["ops"]["provides"]


def test_wvs_plugins_prints_a_header_and_the_commands_plugins_add() -> None:
    run = subprocess.run([str(BIN / "wvs"), "plugins"], capture_output=True, text=True, timeout=60, env=NO_CONFIG)
    assert run.returncode == 0, run.stderr
    header, *lines = run.stdout.splitlines()
    assert header.split() == ["NAME", "MODULE", "DISTRIBUTION", "PROVIDES", "FILE"]
    rows = {line.split()[0]: line for line in lines}
    assert "command:wvs agent" in rows["control-json"]
    assert "command:wvsctl snapshot diff" in rows["diff"] and "op:snapshot_diff" in rows["diff"]
    assert "command:wvsctl snapshot restore" in rows["restore"]
    assert "command:wvsctl snapshot fork" in rows["fork"]
    assert "storage:juicefs, local-volume" in rows["juicefs"]

    listed = subprocess.run([str(BIN / "wvs"), "plugins", "--json"], capture_output=True, text=True, env=NO_CONFIG)
    provides = {row["name"]: row["provides"] for row in json.loads(listed.stdout)}
    assert provides["control-json"] == ["quiesce:control-json", "quiesce:none", "command:wvs agent"]
