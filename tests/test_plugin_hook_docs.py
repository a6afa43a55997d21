"""docs/plugin-hooks.md kept honest (SPEC §7): a section per hookspec and no other, each example run as the
plugin it claims to be — loaded by the config it shows, the way WVS loads plugins — and every config key that
the page or the plugin contracts' docstrings name found in the real config schema."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import subprocess
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
import httpx
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import StartService, make_config
from tests.doc_examples import (
    DOCS,
    Block,
    config_key_spans,
    docstring_spans,
    key_problem,
    prose_spans,
    read_doc,
    run_example,
    section_text,
)
from tests.helpers import create_workspace, key, populate_tree, tree_signature, wait_task
from tests.webhook_receiver import Receiver
from wvs_core import hookspecs, notifier, ops, queue, quiesce, storage, volume
from wvs_core.agentview import AgentView
from wvs_core.api import openapi
from wvs_core.api.app import core_routes, create_app
from wvs_core.api.op_routes import mount_op_routes
from wvs_core.cli.wvs import cli
from wvs_core.cli.wvsctl import cli as wvsctl
from wvs_core.config import Config, PluginsConfig, load_config
from wvs_core.errors import ConfigError
from wvs_core.events import Event
from wvs_core.ids import uuid7
from wvs_core.layout import VolumeLayout, WorkspaceLayout, area_names, snapshot_metadata, write_snapshot_metadata
from wvs_core.models import ExecutionRequest, ExecutionResult, TaskStatus
from wvs_core.params_schema import params_schema
from wvs_core.plugins import PluginRegistry, make_plugin_manager
from wvs_core.quiesce import QuiesceTimeout, quiesced
from wvs_core.storage import StorageCapabilities, TreeUsage, open_tree
from wvs_core.volume import LocalVolume
from wvs_executor.runner import OpRunner

HOOKS = {name: spec for name, spec in vars(hookspecs).items() if callable(spec) and hasattr(spec, "wvs_spec")}
BLOCKS, HEADINGS = read_doc()
PYTHON = [block for block in BLOCKS if block.lang == "python"]
TOML = [block for block in BLOCKS if block.lang == "toml"]
CONTRACTS = (hookspecs, storage, quiesce, queue, notifier, volume, ops)  # what a plugin author reads

F = TypeVar("F", bound=Callable[..., Any])
EXERCISED: set[str] = set()  # hooks whose example a test below runs


@functools.cache
def defaults() -> PluginRegistry:
    """What WVS loads without any plugin of this page."""
    return PluginRegistry.load(PluginsConfig())


def exercises(hook: str) -> Callable[[F], F]:
    """Mark a test as the one that runs ``hook``'s example for what it provides."""
    EXERCISED.add(hook)
    return lambda test: test


def example_of(hook: str) -> Block:
    """The one Python example of ``hook``'s section."""
    found = [block for block in PYTHON if block.hook == hook]
    assert len(found) == 1, f"{hook}: its section needs exactly one ```python example, has {len(found)}"
    return found[0]


def config_of(hook: str, tmp_path: Path) -> Config:
    """The WVS config the section of ``hook`` shows, loaded through the product's loader (no env overrides)."""
    found = [block for block in TOML if block.hook == hook and not block.is_pyproject()]
    assert len(found) == 1, f"{hook}: its section needs exactly one ```toml WVS config, has {len(found)}"
    path = tmp_path / f"{hook}.toml"
    path.write_text(found[0].code)
    try:
        return load_config(path, env={})
    except ConfigError as error:
        pytest.fail(f"{hook}: the config of its section ({found[0].where}) does not load: {error}")


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> dict[str, types.ModuleType]:
    """Every hook section's example, run as the module its first line names and importable by that name (as
    a module listed in ``plugins.modules`` is). The tests above report a section without one."""
    modules = {}
    for block in PYTHON:
        if block.hook in HOOKS and block.module_name:
            modules[block.hook] = run_example(block, block.module_name)
            monkeypatch.setitem(sys.modules, block.module_name, modules[block.hook])
    return modules


# --- one section per hook ----------------------------------------------------------------------------------


def test_every_hookspec_has_a_section_and_every_section_a_hookspec() -> None:
    problems = [
        *(f"{hook} has no `## `{hook}(...)`` section" for hook in sorted(set(HOOKS) - set(HEADINGS))),
        *(
            f"{hook} is documented but wvs_core/hookspecs.py has no such hook"
            for hook in sorted(set(HEADINGS) - set(HOOKS))
        ),
        *(f"{hook} has {len(found)} sections" for hook, found in sorted(HEADINGS.items()) if len(found) > 1),
    ]
    assert not problems, f"{DOCS.name}: " + "; ".join(problems)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_each_section_shows_its_signature_when_it_runs_and_its_config(hook: str) -> None:
    signature = hook + str(inspect.signature(HOOKS[hook])).replace("'", "")
    assert HEADINGS.get(hook) == [signature], f"{hook}: the section's heading must be `{signature}`"
    text = section_text(hook)
    for label in ("**When:**", "**Config:**"):
        assert label in text, f"{hook}: the section has no {label} paragraph"
    example = example_of(hook)
    assert example.module_name, f"{example.where}: {hook}'s example must start with `# <module>.py`"
    shown = [name for block in TOML if block.hook == hook for name in block.named_modules()]
    assert example.module_name in shown, (
        f"{hook}: no ```toml of its section loads its example {example.module_name!r} "
        "(through plugins.modules or a `wvs` entry point)"
    )


def test_every_hook_example_is_exercised() -> None:
    assert set(HOOKS) <= EXERCISED, f"hooks whose example no test runs: {sorted(set(HOOKS) - EXERCISED)}"


# --- every example runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", PYTHON, ids=[block.where for block in PYTHON])
def test_every_python_example_runs_and_registers(block: Block) -> None:
    module = run_example(block, block.module_name or "doc_snippet")
    if block.hook is None:
        return
    implemented = [name for name, value in vars(module).items() if hasattr(value, "wvs_impl")]
    assert implemented == [block.hook], f"{block.where}: {block.hook}'s example implements {implemented}"
    make_plugin_manager(extra=[module])  # its hooks exist and match their specs (check_pending)


@pytest.mark.parametrize("block", TOML, ids=[block.where for block in TOML])
def test_every_toml_example_is_a_valid_config(
    block: Block, tmp_path: Path, examples: dict[str, types.ModuleType]
) -> None:
    if block.is_pyproject():
        entry_points = block.toml()["project"]["entry-points"]["wvs"]
        assert all(isinstance(value, str) for value in entry_points.values()), f"{block.where}: {entry_points}"
        return
    path = tmp_path / "wvs.toml"
    path.write_text(block.code)
    try:
        config = load_config(path, env={})  # names any key that does not exist
        if block.hook is not None:  # what it selects is provided by the examples it loads
            PluginRegistry.load(config.plugins)
    except ConfigError as error:
        pytest.fail(f"{block.where}: {error}")


# --- every config key named exists -------------------------------------------------------------------------

KEY_SOURCES = {DOCS.name: prose_spans(DOCS)} | {
    module.__name__: docstring_spans(inspect.getsource(module)) for module in CONTRACTS
}


@pytest.mark.parametrize("source", sorted(KEY_SOURCES))
def test_every_config_key_named_exists(source: str) -> None:
    problems = [problem for span in config_key_spans(KEY_SOURCES[source]) if (problem := key_problem(span))]
    assert not problems, f"{source} names config keys that do not exist: " + "; ".join(problems)


def test_the_key_check_rejects_keys_that_do_not_exist() -> None:
    wrong = ["storage.backend", "[storage.<name>]", "quiesce.protocol", "queue.backend", "notifiers.enabled"]
    wrong += ["plugins.storages", "executor.mount", "plugins.notifiers.chat", "plugins.storage = 3"]
    assert config_key_spans(wrong) == wrong
    assert all(key_problem(span) for span in wrong)
    assert "the key is `plugins.storage`" in (key_problem("storage.backend") or "")
    right = ["plugins.storage", "[plugins.settings.<name>]", "plugins.settings.juicefs.clone_threads", "executor.tls"]
    right += ['plugins.storage = "localfs"', "events.dispatch = false", "worker.poll_interval"]
    assert [key_problem(span) for span in right] == [None] * len(right)
    assert config_key_spans(["ctx.params", "task.dead", "event.to_json()", "wvs_core.storage"]) == []


# --- what each example provides ----------------------------------------------------------------------------


def executor_for(config: Config, mount: Path, **plugins: Any) -> OpRunner:
    """The executor's op runner for ``config`` on ``mount``."""
    mount.mkdir(exist_ok=True)
    config = attrs.evolve(
        config,
        executor=attrs.evolve(config.executor, mount_path=str(mount)),
        plugins=attrs.evolve(config.plugins, **plugins),
    )
    return OpRunner(config, PluginRegistry.load(config.plugins))


async def run_op(runner: OpRunner, wsid: str, op: str, **params: Any) -> ExecutionResult:
    """Run one op as the executor does for a scheduler's request."""
    return await runner.run(ExecutionRequest(task_id=uuid7(), wsid=wsid, op=op.upper(), params=params))


async def new_workspace(runner: OpRunner, wsid: str) -> Path:
    """Initialise ``wsid``; returns its live tree (written directly: the test is the agent)."""
    live_id = uuid7()
    assert (await run_op(runner, wsid, "init_workspace", live_id=live_id)).success
    return runner.mount / wsid / "live" / live_id


@exercises("wvs_register_storage_backends")
async def test_storage_example_clones_exactly_and_serves_the_executor(
    examples: dict[str, types.ModuleType], tmp_path: Path
) -> None:
    config = config_of("wvs_register_storage_backends", tmp_path)
    plugins = config.plugins
    backend = PluginRegistry.load(plugins).storage_backends[plugins.storage](plugins.settings_for(plugins.storage))
    assert type(backend).__module__ == examples["wvs_register_storage_backends"].__name__
    source, clone = tmp_path / "source", tmp_path / "clone"
    populate_tree(source)
    os.link(source / "run.sh", source / "hard-link")
    descriptor = open_tree(source)
    try:
        assert await backend.clone_tree(descriptor, clone) == TreeUsage()  # cp does not count
    finally:
        os.close(descriptor)
    assert tree_signature(clone) == tree_signature(source)
    assert (clone / "hard-link").stat().st_ino == (clone / "run.sh").stat().st_ino
    await backend.remove_tree(clone)
    assert not clone.exists()
    await backend.remove_tree(clone)  # missing is not an error
    assert isinstance(backend.capabilities(), StorageCapabilities)

    runner = executor_for(config, tmp_path / "mount", quiesce="none")
    live = await new_workspace(runner, "cloned")
    populate_tree(live)
    snapshot_id = uuid7()
    result = await run_op(runner, "cloned", "snapshot_create", snapshot_id=snapshot_id, message=None)
    assert result.success, result
    assert tree_signature(Path(result.results["fs_path"])) == tree_signature(live)


@exercises("wvs_register_quiesce_protocols")
async def test_quiesce_example_freezes_resumes_and_fails_closed(
    examples: dict[str, types.ModuleType], tmp_path: Path
) -> None:
    config = config_of("wvs_register_quiesce_protocols", tmp_path)
    plugins = config.plugins
    protocol_class = PluginRegistry.load(plugins).quiesce_protocols[plugins.quiesce]
    assert protocol_class.__module__ == examples["wvs_register_quiesce_protocols"].__name__
    settings = plugins.settings_for(plugins.quiesce)
    (tmp_path / "mount").mkdir()
    layout = VolumeLayout(tmp_path / "mount").workspace("frozen")

    def slow_freeze(received: Any) -> tuple[int, float]:
        return 204, 2.0 if received.path.endswith("/freeze") else 0.0

    for answer, timeout, confirmed in (
        (None, 5.0, True),
        (lambda _r: (503, 0.0), 5.0, False),
        (slow_freeze, 0.3, False),
    ):
        with Receiver(answer).running() as supervisor, AgentView.open(layout, create=True) as view:
            protocol = protocol_class({**settings, "url": f"{supervisor.url}/quiesce"})  # a local supervisor
            try:
                async with quiesced(protocol, view, "task-1", timeout, asyncio.Event()):
                    assert [r.path for r in supervisor.received] == ["/quiesce/freeze"]
            except QuiesceTimeout:
                assert not confirmed, "the freeze was refused though the supervisor confirmed it"
            else:
                assert confirmed, "nothing may be cloned when the supervisor does not confirm the freeze"
            paths = [r.path for r in supervisor.received]
            assert paths == ["/quiesce/freeze", "/quiesce/resume"], paths
            assert supervisor.events("/quiesce/resume") == [{"wsid": "frozen", "task_id": "task-1"}]


@exercises("wvs_register_queues")
async def test_queue_example_runs_the_service(
    examples: dict[str, types.ModuleType], database: str, tmp_path: Path, start_service: StartService
) -> None:
    shown = config_of("wvs_register_queues", tmp_path)
    plugins = {**attrs.asdict(shown.plugins), "storage": "localfs", "quiesce": "none"}
    config = make_config(database, tmp_path, plugins=plugins, worker={"poll_interval": shown.worker.poll_interval})
    service = await start_service(config)
    assert service.registry.queues[config.plugins.queue].__module__ == examples["wvs_register_queues"].__name__
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "polled")  # claimed, run and finished through the example's queue
        # Accepted in the statement the example's announcement is written into, then found by polling.
        snapshot = await client.post("/v1/workspaces/polled/snapshots", json={}, headers=key())
        assert snapshot.status_code == 202, snapshot.text
        assert (await wait_task(client, snapshot.json()["task_id"]))["status"] == "SUCCEEDED"


@exercises("wvs_register_ctl_commands")
async def test_ctl_commands_example_adds_a_working_wvsctl_command(
    examples: dict[str, types.ModuleType], wvs: httpx.AsyncClient
) -> None:
    make_plugin_manager(extra=[examples["wvs_register_ctl_commands"]]).hook.wvs_register_ctl_commands(cli=wvsctl)
    shown = await asyncio.to_thread(CliRunner().invoke, wvsctl, ["--api-url", str(wvs.base_url), "op", "names"])
    assert shown.exit_code == 0, shown.output
    assert {"snapshot_create", "snapshot_diff"} <= set(shown.stdout.split())


@exercises("wvs_register_commands")
def test_commands_example_adds_a_working_wvs_command(examples: dict[str, types.ModuleType], tmp_path: Path) -> None:
    def wvs_with(*plugins: object) -> click.Group:
        group = click.Group("wvs", commands=dict(cli.commands))  # a copy: the real one stays as it is
        make_plugin_manager(extra=plugins).hook.wvs_register_commands(cli=group)  # as `wvs` starts
        return group

    group = wvs_with(examples["wvs_register_commands"])
    added = sorted(set(group.commands) - set(wvs_with().commands))
    assert added, "the commands example added no command to `wvs`"
    runner = CliRunner()
    for name in added:
        result = runner.invoke(group, [name, "--help"])
        assert result.exit_code == 0, f"wvs {name} --help: {result.output}"

    mount = tmp_path / "mount"
    mount.mkdir()
    layout = VolumeLayout(mount).workspace("listed")
    VolumeLayout(mount).ensure_area()
    layout.ensure_area_dirs()
    complete, half_made = uuid7(), uuid7()
    for snapshot_id in (complete, half_made):
        layout.snapshot(snapshot_id).mkdir()
    write_snapshot_metadata(layout, complete, {"wsid": "listed", "message": "first", "created_at": "2026-01-01"})
    config = tmp_path / "wvs.toml"
    config.write_text(f'[executor]\nmount_path = "{mount}"\n')
    result = runner.invoke(group, ["disk-snapshots", "--config", str(config), "listed"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [complete, "2026-01-01", "first"]
    assert runner.invoke(group, ["disk-snapshots", "--config", str(config), "../x"]).exit_code == 2


@exercises("wvs_register_ops")
async def test_ops_example_is_loaded_declared_and_runs_in_the_executor(
    examples: dict[str, types.ModuleType], tmp_path: Path
) -> None:
    config = config_of("wvs_register_ops", tmp_path)
    registry = PluginRegistry.load(config.plugins)
    added = sorted(set(registry.ops) - set(defaults().ops))
    assert added, "the ops example added no op"
    for name in added:
        op = registry.ops[name]
        assert type(op).__module__ == examples["wvs_register_ops"].__name__
        assert registry.op_by_wire_name(op.wire_name) is op
        jsonschema.Draft202012Validator.check_schema(params_schema(op.params_type))  # what GET /v1/ops serves

    snapshot_id = uuid7()
    assert registry.snapshot_references("snapshot_usage", {"snapshot_id": snapshot_id}) == [snapshot_id]
    assert registry.live_trees("snapshot_usage", {"snapshot_id": snapshot_id}) == {}
    runner = executor_for(config, tmp_path / "mount", storage="localfs", quiesce="none")
    live = await new_workspace(runner, "measured")
    (live / "a.txt").write_text("hello")
    (live / "dir").mkdir()
    (live / "dir" / "b.txt").write_text("abc")
    (live / "link").symlink_to("a.txt")
    assert (await run_op(runner, "measured", "snapshot_create", snapshot_id=snapshot_id, message=None)).success
    result = await run_op(runner, "measured", "snapshot_usage", snapshot_id=snapshot_id)
    assert result.success and result.results == {"entries": "4", "bytes": "8"}, result
    missing = await run_op(runner, "measured", "snapshot_usage", snapshot_id=uuid7())
    assert (missing.success, missing.error_code, missing.retryable) == (False, "SNAPSHOT_NOT_FOUND", False)
    invalid = await run_op(runner, "measured", "snapshot_usage", snapshot_id="../../etc")
    assert (invalid.success, invalid.error_code, invalid.retryable) == (False, "INVALID_PARAMS", False)

    # snapshot_copy: ctx.clone makes the copy crash-safe and idempotent; the op's rule records it.
    copy_id, layout = uuid7(), WorkspaceLayout(runner.mount, "measured")
    assert registry.snapshot_references("snapshot_copy", {"snapshot_id": snapshot_id}) == [snapshot_id]
    copied = await run_op(runner, "measured", "snapshot_copy", snapshot_id=snapshot_id, copy_id=copy_id)
    assert copied.success and not copied.noop, copied
    assert tree_signature(layout.snapshot(copy_id)) == tree_signature(layout.snapshot(snapshot_id))
    assert (snapshot_metadata(layout, copy_id) or {}).get("message") == f"copy of {snapshot_id}"
    assert area_names(layout.tmp_dir) == [], "nothing left under a temporary name"
    again = await run_op(runner, "measured", "snapshot_copy", snapshot_id=snapshot_id, copy_id=copy_id)
    assert again.success and again.noop and again.results == copied.results, again
    gone = await run_op(runner, "measured", "snapshot_copy", snapshot_id=uuid7(), copy_id=uuid7())
    assert (gone.success, gone.error_code, gone.retryable) == (False, "SNAPSHOT_MISSING", False)
    recorded: list[tuple[Any, ...]] = []

    class Recorder:
        async def add_snapshot(self, *args: Any) -> None:
            recorded.append(args)

        async def record_event(self, *args: Any) -> None:
            recorded.append(args)

    task = types.SimpleNamespace(wsid="measured", params={"snapshot_id": snapshot_id, "copy_id": copy_id})
    await registry.ops["snapshot_copy"].on_succeeded(Recorder(), task, copied)  # type: ignore[arg-type]
    assert recorded == [
        ("measured", copy_id, str(layout.snapshot(copy_id)), f"copy of {snapshot_id}"),
        ("snapshot.copied", {"snapshot_id": snapshot_id, "copy_id": copy_id}),
    ]
    # Its own event type is one the service records; its metric counts successes once they committed.
    assert "snapshot.copied" in registry.event_types - defaults().event_types
    copies = examples["wvs_register_ops"].COPIES
    before = copies._value.get()
    for status in (TaskStatus.SUCCEEDED, TaskStatus.DEAD):
        registry.ops["snapshot_copy"].count_outcome(types.SimpleNamespace(status=status))  # type: ignore[arg-type]
    assert copies._value.get() == before + 1

    # Its route is mounted beside the core's and documented from its params: snapshot_id from the path.
    app = create_app(config, registry)
    copy_path = "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:copy"
    assert any(getattr(route, "path", None) == copy_path for route in app.routes)
    mounted = [
        route for route in mount_op_routes(registry.ops.values(), core_routes) if route.op.name == "snapshot_copy"
    ]
    whole = yaml.safe_load(openapi.document(mounted, registry.ops.values()))
    assert "snapshot.copied" in whole["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
    documented = whole["paths"][copy_path]["post"]
    assert documented["operationId"] == "snapshotCopy" and documented["requestBody"]["required"] is False
    assert documented["requestBody"]["content"]["application/json"]["schema"]["properties"] == {}
    answer = documented["responses"]["202"]["content"]["application/json"]["schema"]
    assert answer["required"] == ["task_id", "status", "copy_id"]


def sample_event(event_type: str) -> Event:
    """An event as the dispatcher hands it over."""
    error = {"code": "EXECUTOR_ERROR", "message": "boom"}
    data = {"op": "snapshot_create", "error": error}
    return Event(1, event_type, datetime.now(UTC), "notified", uuid7(), {"type": "test"}, None, data)


@exercises("wvs_register_notifiers")
async def test_notifier_example_delivers_the_events_it_subscribes_to(
    examples: dict[str, types.ModuleType], tmp_path: Path
) -> None:
    config = config_of("wvs_register_notifiers", tmp_path)
    plugins = config.plugins
    registry = PluginRegistry.load(plugins)  # every name in plugins.notifiers is provided
    added = [name for name in plugins.notifiers if name not in defaults().notifiers]
    assert added, "the notifier example's config enables no new notifier"
    with Receiver().running() as chat:
        for name in added:
            settings = {**plugins.settings_for(name), "url": f"{chat.url}/hook"}  # a local endpoint
            built = registry.notifiers[name](settings)  # as the worker builds it
            assert type(built).__module__ == examples["wvs_register_notifiers"].__name__
            wanted = set(settings.get("events", []))
            for subscription in built.subscriptions():
                for event_type in ("task.dead", "workspace.tampered", "task.created"):
                    event = sample_event(event_type)
                    assert subscription.wants(event) == (event_type in wanted), event_type
                    if subscription.wants(event):
                        await subscription.deliver(event)
            await built.close()
    texts = [body["text"] for body in chat.events("/hook")]
    assert len(texts) == 2 and all("notified" in text and "boom" in text for text in texts), texts


@exercises("wvs_local_volume")
def test_local_volume_example_offers_a_volume_for_its_backend(
    examples: dict[str, types.ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_of("wvs_local_volume", tmp_path)
    registry = PluginRegistry.load(config.plugins)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    probe = data_dir / "probe"
    probe.write_text("x")
    reflinks = subprocess.run(["cp", "--reflink=always", probe, data_dir / "clone"], capture_output=True).returncode
    offered = registry.pm.hook.wvs_local_volume(data_dir=data_dir, storage=config.plugins.storage)  # as `wvs up`
    assert (offered is not None) == (reflinks == 0), "the volume must be offered exactly where reflinks work"

    monkeypatch.setattr(examples["wvs_local_volume"], "has_reflinks", lambda _directory: True)
    offered = registry.pm.hook.wvs_local_volume(data_dir=data_dir, storage=config.plugins.storage)
    assert isinstance(offered, LocalVolume)
    assert offered.storage in registry.storage_backends
    assert offered.mount_path.is_dir() and offered.mount_path.parent == data_dir
    offered.close()
    offered.close()
    assert registry.pm.hook.wvs_local_volume(data_dir=data_dir, storage="localfs") is None
