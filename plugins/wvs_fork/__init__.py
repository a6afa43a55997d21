"""The ``workspace_fork`` op (SPEC §2): a new workspace whose first live tree is a clone of a snapshot of
another workspace, created by ``POST /v1/workspaces`` with ``init: {op: "workspace_fork", params}``.

``wvs_fork.op`` is the op; ``wvs_fork.cli`` is ``wvsctl snapshot fork``.
"""

import click

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_fork.op import WorkspaceFork


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``workspace_fork``."""
    return [WorkspaceFork()]


@hookimpl(trylast=True)
def wvs_register_ctl_commands(cli: click.Group) -> None:
    """Add ``wvsctl snapshot fork`` (imported here: the planes that load this plugin need no CLI)."""
    from wvs_fork.cli import snapshot_fork

    snapshots = cli.commands["snapshot"]
    assert isinstance(snapshots, click.Group)
    snapshots.add_command(snapshot_fork)
