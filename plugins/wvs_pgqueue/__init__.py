"""The ``postgres`` queue: SKIP LOCKED claims of workspace heads (per-workspace FIFO), LISTEN/NOTIFY wake-ups."""

from wvs_core import hookimpl
from wvs_core.queue import TaskQueue
from wvs_pgqueue.queue import PostgresQueue


@hookimpl(trylast=True)
def wvs_register_queues() -> list[type[TaskQueue]]:
    """Provide the ``postgres`` queue."""
    return [PostgresQueue]
