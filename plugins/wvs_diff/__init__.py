"""The ``snapshot_diff`` op (SPEC §2): what changed between two directory trees — a snapshot and another
snapshot, or a snapshot and a workspace's live tree — listed in the task's result, read page by page.

``wvs_diff.compare`` walks both trees by descriptors and yields the changes in a stable order;
``wvs_diff.render`` counts them, renders them like ``git diff --stat`` and turns them into JSON and back;
``wvs_diff.op`` is the op.
"""

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_diff.op import SnapshotDiff


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``snapshot_diff``."""
    return [SnapshotDiff()]
