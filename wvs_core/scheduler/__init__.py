"""The scheduling plane: claim tasks, run them on an executor, record the outcome with the op's DB rules.

``claiming`` fills a scheduler's free slots and keeps its leases; ``running`` takes one claimed task to its
recorded outcome; ``judging`` turns how a run ended into a ``TaskOutcome``; ``executors`` calls the executor a
workspace routes to. The database side is ``wvs_core.db.runs``.
"""

from wvs_core.scheduler.claiming import Scheduler

__all__ = ["Scheduler"]
