"""Retention: restic's ``forget --keep-*`` rules for a workspace's snapshots (SPEC §2, Retention).

The pure part: ``RetentionPolicy`` (structured from config or a request body with the one converter) and
``plan()``, which says of every snapshot whether the policy keeps it, and why, or drops it. Nothing here
reads the database, the clock or the filesystem; ``wvs_core.db.retention`` reads a workspace's snapshots
and protections, the ``…/retention`` routes and the worker's periodic job (``wvs_core.scheduler.retention``)
use both.
"""

from wvs_core.retention.duration import KeepWithin
from wvs_core.retention.policy import Candidate, Dropped, Kept, Plan, Protection, RetentionPolicy, plan

__all__ = ["Candidate", "Dropped", "KeepWithin", "Kept", "Plan", "Protection", "RetentionPolicy", "plan"]
