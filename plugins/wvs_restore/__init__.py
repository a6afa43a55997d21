"""The ``restore_paths`` op: replace some paths of ``current`` with a snapshot's, keeping what it replaces."""

import click

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_restore.restore_paths import RestorePaths


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``restore_paths``."""
    return [RestorePaths()]


@hookimpl(trylast=True)
def wvs_register_ctl_commands(cli: click.Group) -> None:
    """Add ``wvsctl snapshot restore`` (imported here: the planes that load this plugin need no CLI)."""
    from wvs_restore.cli import snapshot_restore

    snapshots = cli.commands["snapshot"]
    assert isinstance(snapshots, click.Group)
    snapshots.add_command(snapshot_restore)
