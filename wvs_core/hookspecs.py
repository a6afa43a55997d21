# mypy: disable-error-code="empty-body"
"""Hook specifications: what a WVS plugin can provide, grouped by lifecycle.

A plugin is any module or object with functions marked ``@wvs_core.hookimpl`` whose names match the
specs below. Packages expose plugins through the ``wvs`` entry-point group; a deployment can also
name modules in ``plugins.modules``. The defaults shipped with WVS are loaded the same way and are
marked ``trylast``, so an installed plugin registering the same name takes precedence.

Every process that loads plugins calls the ``wvs_register_*`` hooks that return lists once, at start. They
are collecting hooks: every plugin's list is gathered (the first registration of a name wins), and the
``[plugins]`` table of the config selects by ``name``: ``plugins.storage``, ``plugins.quiesce``,
``plugins.queue`` and ``plugins.notifiers``; every op is available. Each selected class is built with its
``[plugins.settings.<name>]`` table. docs/plugin-hooks.md documents every hook with a runnable example.
"""

from __future__ import annotations

from pathlib import Path

import click
import pluggy

from wvs_core.notifier import Notifier
from wvs_core.ops import TaskOp
from wvs_core.queue import TaskQueue
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.storage import StorageBackend
from wvs_core.volume import LocalVolume

hookspec = pluggy.HookspecMarker("wvs")

# --- startup: the building blocks a process is assembled from ---------------------------------


@hookspec
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Return storage backend classes this plugin provides.

    Each class sets ``name``; ``plugins.storage`` in the config picks one. The executor (and ``wvs fsck``)
    builds it with the ``[plugins.settings.<name>]`` table of the config. Example::

        @hookimpl
        def wvs_register_storage_backends():
            return [BtrfsBackend]
    """


@hookspec
def wvs_register_quiesce_protocols() -> list[type[QuiesceProtocol]]:
    """Return quiesce protocol classes; ``plugins.quiesce`` in the config picks one by ``name``.

    The executor (and ``wvs fsck``) builds it with its ``[plugins.settings.<name>]`` table.
    """


@hookspec
def wvs_register_queues() -> list[type[TaskQueue]]:
    """Return queue classes; ``plugins.queue`` in the config picks one by ``name``.

    Each scheduler of the worker, and the API, builds it with the database engine and its
    ``[plugins.settings.<name>]`` table.
    """


@hookspec
def wvs_register_commands(cli: click.Group) -> None:
    """Add click commands to the ``wvs`` command line (``cli.add_command(...)``).

    Called by ``wvs`` at start, before any config is read: only entry-point plugins add commands
    (``plugins.modules`` is not read here).
    """


@hookspec
def wvs_register_ctl_commands(cli: click.Group) -> None:
    """Add click commands to the ``wvsctl`` command line, or subcommands to its groups
    (``cli.commands["snapshot"].add_command(...)``): a plugin's op gets its own client command.

    Called by ``wvsctl`` at start, before it parses its arguments; only entry-point plugins add commands.
    A command reaches the API through ``wvs_core.cli.wvsctl.client(ctx)``, the invocation's
    ``wvs_client.Client``.
    """


# --- scheduling and execution: what tasks exist --------------------------------------------------


@hookspec
def wvs_register_ops() -> list[TaskOp]:
    """Return task op instances. Every loaded op is available (no config key selects ops); the first
    registration of a name wins.

    The API queues a task of any of them (``POST /v1/workspaces/{wsid}/tasks``), validating its params with
    ``op.params_type``, publishes that type's JSON Schema (``GET /v1/ops``) and reads the op's declarations;
    the scheduler runs its DB-side rules and the executor runs ``op.execute``.
    """


# --- notification: events out of the service ----------------------------------------------------


@hookspec
def wvs_register_notifiers() -> list[type[Notifier]]:
    """Return notifier classes; those named in ``plugins.notifiers`` receive every event (SPEC §14).

    The worker builds each with its ``[plugins.settings.<name>]`` table; the event dispatcher then hands
    every event to each of its ``subscriptions()`` (by default one: ``notify``), after the transaction that
    recorded it committed, at least once and in order per workspace, never inside a task's slot.
    """


# --- embedded mode: ``wvs up`` on one machine ---------------------------------------------------


@hookspec(firstresult=True)
def wvs_local_volume(data_dir: Path, storage: str) -> LocalVolume | None:
    """Provide a workspace volume under ``data_dir`` for the embedded single-machine mode.

    ``storage`` is the backend the configuration asks for (``plugins.storage``). Return a started
    ``LocalVolume`` for it (its ``storage`` names the backend to use on it), or None when this plugin does
    not provide that backend or cannot here (say, no FUSE); the first non-None result wins, and ``wvs up``
    falls back to a plain directory with the ``localfs`` backend.
    """
