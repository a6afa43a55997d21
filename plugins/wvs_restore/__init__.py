"""The ``restore_paths`` op: replace some paths of ``current`` with a snapshot's, keeping what it replaces."""

from wvs_core import hookimpl
from wvs_core.ops import TaskOp
from wvs_restore.restore_paths import RestorePaths


@hookimpl(trylast=True)
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``restore_paths``."""
    return [RestorePaths()]
