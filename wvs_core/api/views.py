"""Domain models as API JSON."""

from __future__ import annotations

from typing import Any

from wvs_core.convert import unstructure
from wvs_core.models import Page, Snapshot, Task, Workspace
from wvs_core.ops import PAGED_RESULT, TaskOp, summarised_result

HIDDEN_TASK_FIELDS = ("request_hash", "actor")


def workspace_view(workspace: Workspace) -> dict[str, Any]:
    """A workspace, with absolute ``root_path`` and ``current_path``."""
    return dict(unstructure(workspace))


def snapshot_view(snapshot: Snapshot) -> dict[str, Any]:
    """A snapshot: ``{snapshot_id, message, labels, entries, bytes, fs_path, created_at}`` (SPEC §7)."""
    return {
        "snapshot_id": snapshot.snapshot_id,
        "message": snapshot.message,
        "labels": snapshot.labels,
        "entries": snapshot.entries,
        "bytes": snapshot.bytes,
        "fs_path": snapshot.fs_path,
        "created_at": snapshot.created_at.isoformat(),
    }


def task_view(task: Task, op: TaskOp | None) -> dict[str, Any]:
    """A task of ``op`` (None: no loaded plugin provides it), without internal bookkeeping; the list its op
    serves page by page (``TaskOp.paged_result``) is left out of ``result`` and ``result_page`` says how long it
    is and where to read it (``summarised_result``; null for other tasks)."""
    data = dict(unstructure(task))
    for field in HIDDEN_TASK_FIELDS:
        data.pop(field, None)
    data["result"], data[PAGED_RESULT] = summarised_result(op, task.task_id, task.result)
    return data


def page_view(page: Page, view: Any) -> dict[str, Any]:
    """``{"items": [...], "next_cursor": ...}``."""
    return {"items": [view(item) for item in page.items], "next_cursor": page.next_cursor}
