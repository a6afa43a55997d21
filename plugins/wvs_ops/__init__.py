"""The default task ops: init_workspace and snapshot_create."""

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_ops.init_workspace import InitWorkspace
from wvs_ops.snapshot_create import SnapshotCreate


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide the built-in ops."""
    return [InitWorkspace(), SnapshotCreate()]
