"""The default task ops: init_workspace, snapshot_create, set_current, snapshot_drop."""

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_ops.init_workspace import InitWorkspace
from wvs_ops.set_current import SetCurrent
from wvs_ops.snapshot_create import SnapshotCreate
from wvs_ops.snapshot_drop import SnapshotDrop


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide the built-in ops."""
    return [InitWorkspace(), SnapshotCreate(), SetCurrent(), SnapshotDrop()]
