"""Retention: restic's ``forget --keep-*`` rules for a workspace's snapshots (SPEC §2, Retention).

So far the pure part only: ``RetentionPolicy`` (structured from config or a request body with the one
converter) and ``plan()``, which says of every snapshot whether the policy keeps it, and why, or drops it.
Nothing here reads the database, the clock or the filesystem, and no hook is implemented yet: the periodic
``snapshot_drop`` submission and the ``…/retention`` routes come later.
"""

from wvs_retention.duration import KeepWithin
from wvs_retention.policy import Candidate, Dropped, Kept, Plan, Protection, RetentionPolicy, plan

__all__ = ["Candidate", "Dropped", "KeepWithin", "Kept", "Plan", "Protection", "RetentionPolicy", "plan"]
