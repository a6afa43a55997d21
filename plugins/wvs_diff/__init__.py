"""The ``snapshot_diff`` op (SPEC §2): what changed between two directory trees — a snapshot and another
snapshot, or a snapshot and a workspace's live tree — listed in the task's result, read page by page.

``wvs_diff.compare`` walks both trees by descriptors and yields the changes in a stable order;
``wvs_diff.render`` counts them, renders them like ``git diff --stat`` and turns them into JSON and back;
``wvs_diff.op`` is the op; ``wvs_diff.cli`` is ``wvsctl snapshot diff``.
"""

import click

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_diff.op import SnapshotDiff


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``snapshot_diff``."""
    return [SnapshotDiff()]


@hookimpl(trylast=True)
def wvs_register_ctl_commands(cli: click.Group) -> None:
    """Add ``wvsctl snapshot diff`` (imported here: the planes that load this plugin need no CLI)."""
    from wvs_diff.cli import snapshot_diff

    snapshots = cli.commands["snapshot"]
    assert isinstance(snapshots, click.Group)
    snapshots.add_command(snapshot_diff)
