# mypy: disable-error-code="empty-body"
"""Hook specifications: what a WVS plugin can provide, grouped by lifecycle.

A plugin is any module or object with functions marked ``@wvs_core.hookimpl`` whose names match the
specs below. Packages expose plugins through the ``wvs`` entry-point group; a deployment can also
name modules in ``plugins.modules``. The defaults shipped with WVS are loaded the same way and are
marked ``trylast``, so an installed plugin registering the same name takes precedence.

All ``wvs_register_*`` hooks are collecting hooks: every plugin's list is gathered, and the config
selects among the results by ``name``.
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

    Each class sets ``name``; ``storage.backend`` in the config picks one. The executor builds it
    with the ``[storage.<name>]`` table of the config. Example::

        @hookimpl
        def wvs_register_storage_backends():
            return [BtrfsBackend]
    """


@hookspec
def wvs_register_quiesce_protocols() -> list[type[QuiesceProtocol]]:
    """Return quiesce protocol classes; ``quiesce.protocol`` in the config picks one by ``name``."""


@hookspec
def wvs_register_queues() -> list[type[TaskQueue]]:
    """Return queue classes; ``queue.backend`` in the config picks one by ``name``."""


@hookspec
def wvs_register_commands(cli: click.Group) -> None:
    """Add click commands to the ``wvs`` command line (``cli.add_command(...)``)."""


# --- scheduling and execution: what tasks exist --------------------------------------------------


@hookspec
def wvs_register_ops() -> list[TaskOp]:
    """Return task op instances. Every loaded op is available; names must be unique.

    The API validates an op's params with ``op.params_type``, the scheduler runs its DB-side rules
    and the executor runs ``op.execute``.
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
