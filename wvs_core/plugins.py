"""The plugin manager and the registry that turns config names into plugin classes."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import pluggy

from wvs_core import hookspecs
from wvs_core.config import PluginsConfig
from wvs_core.errors import ConfigError
from wvs_core.events import EVENT_TYPES, check_op_event_types
from wvs_core.notifier import Notifier
from wvs_core.ops import TaskOp
from wvs_core.queue import TaskQueue
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.storage import StorageBackend

ENTRY_POINT_GROUP = "wvs"

T = TypeVar("T")


def make_plugin_manager(modules: Sequence[str] = (), extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """Build a plugin manager: entry-point plugins, then ``modules`` imported by name, then ``extra``.

    Fails loudly (``check_pending``) when a plugin implements a hook that does not exist.
    """
    pm = pluggy.PluginManager("wvs")
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise ConfigError(f"plugins.modules: cannot import {name!r}: {error}") from None
        if not pm.is_registered(module):
            pm.register(module, name=name)
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise ConfigError(f"plugin error: {error}") from None
    return pm


def _by_name(results: list[list[T]], kind: str) -> dict[str, T]:
    """First registration of a name wins (defaults are ``trylast``, so they come last)."""
    found: dict[str, T] = {}
    for items in results:
        for item in items or []:
            name = item.name  # type: ignore[attr-defined]
            if not isinstance(name, str) or not name:
                raise ConfigError(f"a {kind} plugin returned {item!r} without a name")
            found.setdefault(name, item)
    return found


@attrs.frozen
class PluginRegistry:
    """What the loaded plugins provide, by name."""

    pm: pluggy.PluginManager
    storage_backends: dict[str, type[StorageBackend]]
    quiesce_protocols: dict[str, type[QuiesceProtocol]]
    queues: dict[str, type[TaskQueue]]
    ops: dict[str, TaskOp]
    notifiers: dict[str, type[Notifier]]

    @classmethod
    def load(cls, config: PluginsConfig, extra: Iterable[object] = ()) -> PluginRegistry:
        """Load every plugin and check that the names ``config`` selects exist."""
        pm = make_plugin_manager(config.modules, extra)
        hook = pm.hook
        registry = cls(
            pm=pm,
            storage_backends=_by_name(hook.wvs_register_storage_backends(), "storage"),
            quiesce_protocols=_by_name(hook.wvs_register_quiesce_protocols(), "quiesce"),
            queues=_by_name(hook.wvs_register_queues(), "queue"),
            ops=_by_name(hook.wvs_register_ops(), "op"),
            notifiers=_by_name(hook.wvs_register_notifiers(), "notifier"),
        )
        taken: dict[str, str] = {}
        for op in registry.ops.values():
            try:
                check_op_event_types(op.name, op.event_types, taken)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            taken.update(dict.fromkeys(op.event_types, op.name))
        registry._require("plugins.storage", config.storage, registry.storage_backends)
        registry._require("plugins.quiesce", config.quiesce, registry.quiesce_protocols)
        registry._require("plugins.queue", config.queue, registry.queues)
        for name in config.notifiers:
            registry._require("plugins.notifiers", name, registry.notifiers)
        return registry

    @staticmethod
    def _require(key: str, name: str, available: dict[str, Any]) -> None:
        if name not in available:
            known = ", ".join(sorted(available)) or "none loaded"
            raise ConfigError(f"{key}: no plugin provides {name!r} (available: {known})")

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type this process may record: the core's and each loaded op's (``TaskOp.event_types``)."""
        return EVENT_TYPES | {name for op in self.ops.values() for name in op.event_types}

    def build_notifiers(self, config: PluginsConfig) -> list[Notifier]:
        """The notifiers ``config`` selects (``plugins.notifiers``), each built with its settings table. Raises
        ConfigError when one's subscription wants an event type no core or loaded op records."""
        built = [self.notifiers[name](config.settings_for(name)) for name in config.notifiers]
        known = self.event_types
        for notifier in built:
            for subscription in notifier.subscriptions():
                unknown = sorted((subscription.types or frozenset()) - known)
                if unknown:
                    raise ConfigError(
                        f"plugins.settings.{notifier.name}: subscription {subscription.name} wants unknown event "
                        f"type(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                    )
        return built

    def op(self, name: str) -> TaskOp:
        """The op called ``name``; KeyError when no plugin provides it."""
        return self.ops[name]

    def snapshot_references(self, op: str, params: Mapping[str, Any]) -> list[str]:
        """The snapshots a task of ``op`` with ``params`` references (``TaskOp.references``); none for an op
        no loaded plugin provides."""
        found = self.ops.get(op)
        return found.references(params) if found is not None else []

    def live_trees(self, op: str, params: Mapping[str, Any]) -> dict[str, str | None] | None:
        """The live trees a succeeded task of ``op`` with ``params`` made current (``TaskOp.live_trees``); None
        for an op no loaded plugin provides: which trees its tasks made is then unknown."""
        found = self.ops.get(op)
        return found.live_trees(params) if found is not None else None

    def kept_trees(self, op: str, params: Mapping[str, Any]) -> list[str]:
        """The snapshots a task of ``op`` with ``params`` makes of the live tree it replaced
        (``TaskOp.kept_trees``); none for an op no loaded plugin provides."""
        found = self.ops.get(op)
        return found.kept_trees(params) if found is not None else []

    def op_by_wire_name(self, wire_name: str) -> TaskOp | None:
        """The op whose gRPC name is ``wire_name``, or None."""
        return next((op for op in self.ops.values() if op.wire_name == wire_name), None)

    def describe(self) -> list[dict[str, Any]]:
        """Every loaded plugin, where it comes from, and what it provides (for ``wvs plugins``): ``{name, module,
        file, distribution, provides}``, ``provides`` naming each item as ``KIND:NAME`` (``storage:juicefs``,
        ``op:snapshot_create``…) and ``local-volume`` for a plugin that mounts a volume for ``wvs up``."""
        dists = {id(plugin): dist for plugin, dist in self.pm.list_plugin_distinfo()}
        volumes = {implementation.plugin for implementation in self.pm.hook.wvs_local_volume.get_hookimpls()}
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            dist = dists.get(id(plugin))
            provides = [
                f"{kind}:{item_name}"
                for kind, items in (
                    ("storage", self.storage_backends),
                    ("quiesce", self.quiesce_protocols),
                    ("queue", self.queues),
                    ("op", self.ops),
                    ("notifier", self.notifiers),
                )
                for item_name, item in items.items()
                if (item.__module__ if isinstance(item, type) else type(item).__module__).split(".")[0]
                == getattr(plugin, "__name__", "").split(".")[0]
            ]
            if plugin in volumes:
                provides.append("local-volume")  # the volume `wvs up` mounts
            rows.append(
                {
                    "name": name,
                    "module": getattr(plugin, "__name__", repr(plugin)),
                    "file": getattr(plugin, "__file__", None),
                    "distribution": f"{dist.project_name} {dist.version}" if dist else None,
                    "provides": provides,
                }
            )
        return rows
