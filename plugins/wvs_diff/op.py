"""snapshot_diff: what changed from a snapshot to another snapshot or to ``current``, as a paged list.

**The sides.** ``snapshot_id`` is the tree before, ``against`` the tree after: another snapshot of the same
workspace, or ``"current"`` — the live tree ``current`` points to, read through the agent view's checks
(SPEC §13: ``current`` must be exactly ``live/<uuid>``, nothing below it is followed, only regular files are
opened, by descriptor). Two snapshots are read without any quiesce (WVS writes nothing in them). ``current``
is read live by default — the agent may write while it is compared, and each entry is then as it was when
it was reached; ``quiesce: true`` holds the agent's writers frozen for the whole diff (fail-closed like a
snapshot) for a consistent view.

**Cheap on clones.** Content is read only where metadata cannot decide (``content_check``, default
``ctime``: equal size, mtime and ctime mean equal content; a metadata clone keeps all three, so data two
snapshots share is never read, while a same-size rewrite whose mtime was set back is still seen).

**The result.** ``{"snapshot_id", "against", "changes": [...], "truncated", "summary"}``: ``changes`` lists
the first ``MAX_LISTED_CHANGES`` changes (and at most ``MAX_LISTED_BYTES`` of their JSON, which keeps the
executor's answer far below gRPC's 4 MiB) in path order, each ``wvs_diff.render.change_to_json``;
``truncated`` says whether changes were left out; ``summary`` (``DiffSummary``) counts every change, listed
or not. ``GET /v1/tasks/{task_id}/result`` serves ``changes`` page by page.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs
from prometheus_client import Counter

from wvs_core.cancellation import OpCanceled, finish_in_thread
from wvs_core.convert import describe_error, structure
from wvs_core.errors import ErrorCode
from wvs_core.ids import check_uuid, is_uuid
from wvs_core.models import ExecutionResult, Task, TaskStatus
from wvs_core.ops import ClaimDecision, ExecutionContext, OpFailed, OpRoute, TaskOp, WorkspaceTransaction
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_diff.compare import Change, ChangeKind, ContentCheck, diff_trees
from wvs_diff.render import DiffSummary, change_to_json, summarize

CURRENT = "current"
MAX_LISTED_CHANGES = 10_000  # changes kept in the task's result; the summary counts them all
MAX_LISTED_BYTES = 1 << 20  # bytes of JSON those changes may take
DIFFED = "snapshot.diffed"
DIFF_ENTRIES = Counter(
    "wvs_diff_entries_total", "Changes found by snapshot_diff tasks that succeeded, by kind of change.", ["change"]
)


def _snapshot_or_current(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value != CURRENT and not is_uuid(value):
        raise ValueError(f'{attribute.name} must be a snapshot id (UUID) or "{CURRENT}", got {value!r}')


def _only_against_current(instance: SnapshotDiffParams, attribute: attrs.Attribute[bool], value: bool) -> None:
    if value and instance.against != CURRENT:
        raise ValueError(f'{attribute.name} applies only against "{CURRENT}" (snapshots are never written)')


@attrs.frozen
class SnapshotDiffParams:
    """The two sides and how closely to compare them."""

    snapshot_id: str = attrs.field(validator=check_uuid, metadata={"description": "the tree before: a snapshot"})
    against: str = attrs.field(
        validator=_snapshot_or_current,
        metadata={"description": 'the tree after: another snapshot of the workspace, or "current"'},
    )
    quiesce: bool = attrs.field(
        default=False,
        validator=_only_against_current,
        metadata={"description": 'against "current": freeze the agent\'s writers for the whole diff'},
    )
    content_check: Literal["metadata", "ctime", "full"] = attrs.field(
        default="ctime",
        metadata={
            "description": "when files of equal size are read: metadata (mtime differs), ctime (mtime or ctime "
            "differs), full (always)"
        },
    )


class SnapshotDiff(TaskOp):
    """List what changed from a snapshot to another snapshot or to ``current``. Reads only: a re-run diffs
    again."""

    name = "snapshot_diff"
    params_type = SnapshotDiffParams
    quiesces = True  # with the param quiesce
    routes = (
        OpRoute(
            "POST",
            "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff",
            operation_id="diffSnapshot",
            summary="List what changed from a snapshot to another snapshot or to `current` (the task's result)",
        ),
    )
    paged_result = "changes"
    event_types = MappingProxyType(
        {
            DIFFED: "a diff ended: data {snapshot_id, against, summary (changes per kind, bytes added and "
            "removed), truncated}; the changes are the task's result"
        }
    )

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """Both snapshots (``current`` is no snapshot)."""
        return [params["snapshot_id"], *([params["against"]] if params["against"] != CURRENT else [])]

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Refuse a snapshot that was dropped before the task was submitted but after it was checked."""
        for snapshot_id in self.references(task.params):
            snapshot = await tx.get_snapshot(task.wsid, snapshot_id)
            if snapshot is None or snapshot.deleted_at is not None:
                return ClaimDecision.reject(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id} does not exist")
        return ClaimDecision.proceed()

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """``snapshot.diffed``, with the counts (the changes themselves stay in the task's result)."""
        stored = task.result or {}
        diffed = {
            "snapshot_id": task.params["snapshot_id"],
            "against": task.params["against"],
            "summary": stored.get("summary"),
            "truncated": stored.get("truncated"),
        }
        await tx.record_event(DIFFED, diffed)

    def count_outcome(self, task: Task) -> None:
        """``wvs_diff_entries_total{change}``: the changes of each kind a diff that succeeded found."""
        summary = (task.result or {}).get("summary") or {}
        if task.status != TaskStatus.SUCCEEDED:
            return
        for kind in ChangeKind:
            if summary.get(kind.value):
                DIFF_ENTRIES.labels(kind.value).inc(summary[kind.value])

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Compare the trees in a thread that stops at the next entry or chunk once the task is cancelled
        or its deadline passes; against ``current`` with ``quiesce``, inside a freeze."""
        try:
            params = structure(dict(ctx.params), SnapshotDiffParams)
        except Exception as error:
            raise OpFailed("INVALID_PARAMS", describe_error(error), retryable=False) from None
        stop = threading.Event()
        if params.quiesce:
            async with ctx.quiesced():
                ctx.reached("frozen")
                listing = await finish_in_thread(_diff, ctx, params, stop, stop=stop)
            ctx.reached("resumed")
        else:
            listing = await finish_in_thread(_diff, ctx, params, stop, stop=stop)
        ctx.reached("compared")
        return ExecutionResult(
            success=True,
            results={
                "snapshot_id": params.snapshot_id,
                "against": params.against,
                "changes": json.dumps(listing.changes, separators=(",", ":")),
                "truncated": json.dumps(listing.truncated),
                "summary": json.dumps(attrs.asdict(listing.summary)),
            },
        )

    def task_result(self, results: Mapping[str, str]) -> dict[str, Any]:
        """``changes``, ``truncated`` and ``summary`` decoded from their JSON text."""
        try:
            decoded = {key: json.loads(results[key]) for key in ("changes", "truncated", "summary")}
        except (KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"no diff in the results: {error!r}") from None
        return {"snapshot_id": results.get("snapshot_id"), "against": results.get("against"), **decoded}


@attrs.frozen
class _Listing:
    changes: list[dict[str, Any]]
    truncated: bool
    summary: DiffSummary


def _diff(ctx: ExecutionContext, params: SnapshotDiffParams, stop: threading.Event) -> _Listing:
    """Blocking: open both trees (the live one through the agent view) and compare them."""

    def checkpoint() -> None:
        if stop.is_set():
            raise OpCanceled(f"task {ctx.task_id} stopped")
        ctx.checkpoint()

    before = SnapshotTree(params.snapshot_id).open(ctx)
    try:
        if params.against == CURRENT:
            after = LiveTree(ctx.view.current_live_id()).open(ctx)
        else:
            after = SnapshotTree(params.against).open(ctx)
        try:
            kept = _Kept()
            changes = diff_trees(before, after, content_check=ContentCheck(params.content_check), checkpoint=checkpoint)
            summary = summarize(kept.keep(changes))
            return _Listing(kept.changes, kept.truncated, summary)
        finally:
            os.close(after)
    finally:
        os.close(before)


@attrs.define
class _Kept:
    """The first changes of a stream, as JSON, within ``MAX_LISTED_CHANGES`` and ``MAX_LISTED_BYTES``."""

    changes: list[dict[str, Any]] = attrs.Factory(list)
    size: int = 0
    truncated: bool = False

    def keep(self, changes: Iterable[Change]) -> Iterator[Change]:
        """Pass ``changes`` through, keeping what fits."""
        for change in changes:
            if not self.truncated:
                item = change_to_json(change)
                cost = len(json.dumps(item, separators=(",", ":"))) + 1
                if len(self.changes) < MAX_LISTED_CHANGES and self.size + cost <= MAX_LISTED_BYTES:
                    self.changes.append(item)
                    self.size += cost
                else:
                    self.truncated = True
            yield change
