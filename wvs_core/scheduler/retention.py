"""The worker's periodic retention job: every ``worker.retention_interval`` it plans each ACTIVE workspace's
snapshots under the policy that applies and submits an ordinary ``snapshot_drop`` task, actor
``{"type": "retention"}``, for each snapshot the plan drops.

Apart from the FIFO path on purpose: it only creates tasks, through the same ``Store.submit_task`` the API
uses (so the drop's own declarations re-check, under the workspace's lock, that the snapshot is neither
current nor referenced), and the schedulers run them like any other. Each task's Idempotency-Key is derived
from the snapshot id, so several workers applying at once, or one applying again before the drop ran, create
one task per snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from wvs_core import metrics
from wvs_core.config import Config
from wvs_core.db import retention as stored
from wvs_core.db.store import Store, Submission, TaskSpec, require_snapshots
from wvs_core.errors import WVSError
from wvs_core.hashing import request_hash
from wvs_core.ids import uuid7
from wvs_core.plugins import PluginRegistry
from wvs_core.scope import EVERYTHING

log = logging.getLogger(__name__)

DROP_OP = "snapshot_drop"  # the op the snapshot DELETE route aliases; retention submits the same
RETENTION_ACTOR = {"type": "retention"}
PAGE = 200  # workspaces read per statement while walking them


def idempotency_key(snapshot_id: str) -> str:
    """The key of retention's drop of ``snapshot_id``: the same from every worker, every time."""
    return f"retention-drop-{snapshot_id}"


class RetentionJob:
    """Applies retention policies (SPEC §2) now (``apply_all``) or every ``worker.retention_interval`` (``run``)."""

    def __init__(self, config: Config, registry: PluginRegistry, store: Store) -> None:
        self.config = config
        self.registry = registry
        self.store = store

    async def run(self, stop: asyncio.Event) -> None:
        """Apply every interval until ``stop`` is set; a failed round is logged and the next one tried."""
        while not stop.is_set():
            try:
                await self.apply_all()
            except Exception:
                log.exception("retention: a round failed; trying again in %gs", self.config.worker.retention_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.worker.retention_interval)

    async def apply_all(self) -> list[str]:
        """One round over every ACTIVE workspace — only those with a policy of their own when the default keeps
        everything (the others' plans drop nothing); returns the ids of the drop tasks it created."""
        created: list[str] = []
        after = ""
        own_policy_only = self.config.retention.is_empty()
        while True:
            async with self.store.autocommit.connect() as conn:
                wsids = await stored.active_workspaces(conn, after, PAGE, own_policy_only=own_policy_only)
            for wsid in wsids:
                created += await self.apply(wsid)
            if len(wsids) < PAGE:
                return created
            after = wsids[-1]

    async def apply(self, wsid: str) -> list[str]:
        """Submit a drop for each snapshot the workspace's plan drops now; the ids of the tasks created."""
        op = self.registry.ops.get(DROP_OP)
        if op is None:
            log.warning("retention: no %s op is loaded; nothing is dropped", DROP_OP)
            return []
        async with self.store.autocommit.connect() as conn:
            _policy, plan = await stored.workspace_plan(
                conn, wsid, self.config.retention, self.registry.snapshot_references, datetime.now(UTC)
            )
        created = []
        for dropped in plan.drop:
            params = {"snapshot_id": dropped.snapshot_id}
            spec = TaskSpec(
                op=DROP_OP,
                params=params,
                max_attempts=self.config.worker.max_attempts,
                timeout_seconds=int(self.config.executor.task_timeout),
            )
            submission = Submission(
                idempotency_key=idempotency_key(dropped.snapshot_id),
                request_hash=request_hash(params, "DELETE", f"/v1/workspaces/{wsid}/snapshots/{dropped.snapshot_id}"),
                request_id=uuid7(),
                actor=RETENTION_ACTOR,
            )
            check = require_snapshots(op.references(params), op.drops(params), self.registry.snapshot_references)
            try:
                accepted = await self.store.submit_task(wsid, spec, submission, check, scope=EVERYTHING)
            except WVSError as error:  # in use or gone since the plan was made, the workspace disabled...
                log.info("retention: snapshot %s of %s stays: %s", dropped.snapshot_id, wsid, error)
                continue
            if accepted.created:
                created.append(accepted.task.task_id)
                metrics.RETENTION_DROPS.inc()
                log.info(
                    "retention: dropping snapshot %s of %s (task %s)", dropped.snapshot_id, wsid, accepted.task.task_id
                )
        return created
