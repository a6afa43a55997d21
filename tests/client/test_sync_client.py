"""Client (synchronous) against a running WVS on JuiceFS: every kind of call a program makes, typed answers,
waiting with progress, pagination, and errors as classes carrying the request id."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import create_workspace
from wvs_client import (
    BadRequest,
    Client,
    ConflictIdempotentMismatch,
    ConflictSnapshotInUse,
    NotFound,
    Snapshot,
    Task,
    WvsError,
)
from wvs_client import calls as sdk_calls
from wvs_client.responder import QuiesceResponder


def lifecycle(url: str, mount: Path) -> dict[str, Any]:
    """A program's session, in a thread (the service runs in the test's loop)."""
    seen: dict[str, Any] = {}
    with Client(url) as client:
        created = client.create_workspace("sdk-sync", owner="programs")
        progress: list[Task] = []
        init = created.wait(timeout=30, on_progress=progress.append)
        seen["init"], seen["init_progress"] = init, [task.status for task in progress]
        (mount / "sdk-sync" / "current" / "a.txt").write_text("one\n")
        with QuiesceResponder(mount / "sdk-sync").running_in_thread():
            first = client.create_snapshot("sdk-sync", "first", labels={"kind": "manual"})
            seen["first_done"] = first.wait(timeout=30)
            seen["first"] = first
            (mount / "sdk-sync" / "current" / "a.txt").write_text("two\n")
            (mount / "sdk-sync" / "current" / "b.txt").write_text("new\n")
            second = client.create_snapshot("sdk-sync", "second")
            assert second.wait(timeout=30).succeeded
            diff = client.diff_snapshot("sdk-sync", first.snapshot_id or "", against=second.snapshot_id or "")
            seen["diff"] = diff.wait(timeout=30)
            seen["changes"] = list(client.iter_task_result(diff.task_id))
            seen["rollback"] = client.set_current("sdk-sync", first.snapshot_id or "").wait(timeout=30)
            key = sdk_calls.new_idempotency_key()
            keyed = [client.create_snapshot("sdk-sync", "k", idempotency_key=key) for _ in range(2)]
            seen["keyed"] = [accepted.task_id for accepted in keyed]
            keyed[0].wait(timeout=30)
            try:
                client.create_snapshot("sdk-sync", "other body", idempotency_key=key)
            except WvsError as error:
                seen["mismatch"] = error
        seen["content"] = (mount / "sdk-sync" / "current" / "a.txt").read_text()
        seen["current"] = client.get_current("sdk-sync")
        seen["workspace"] = client.get_workspace("sdk-sync")
        seen["labelled"] = client.list_snapshots("sdk-sync", labels={"kind": "manual"}).items
        seen["one_by_one"] = list(client.pages(sdk_calls.list_snapshots, "sdk-sync", limit=1))
        seen["every"] = list(client.iter_snapshots("sdk-sync"))
        seen["tasks"] = list(client.iter_tasks(wsid="sdk-sync"))
        seen["events"] = list(client.events(wsid="sdk-sync", follow=False))
        try:
            client.drop_snapshot("sdk-sync", first.snapshot_id or "")
        except WvsError as error:
            seen["drop_current"] = error
        try:
            client.get_workspace("nope-nope")
        except WvsError as error:
            seen["missing"] = error
    return seen


async def test_a_program_snapshots_diffs_and_rolls_back_with_the_sync_client(wvs) -> None:
    seen = await asyncio.to_thread(lifecycle, str(wvs.base_url), wvs.mount_path)

    assert seen["init"].status == "SUCCEEDED" and seen["init"].op == "init_workspace"
    assert seen["init_progress"][-1] == "SUCCEEDED", "the callback sees the end"
    assert seen["first_done"].succeeded and seen["first_done"].result["snapshot_id"] == seen["first"].snapshot_id
    assert seen["diff"].succeeded
    changes = {change["path"]: change["change"] for change in seen["changes"]}
    assert changes == {"a.txt": "modified", "b.txt": "added"}
    assert seen["rollback"].succeeded
    assert seen["content"] == "one\n", "set_current brought the first snapshot's tree back"
    assert seen["current"].current_snapshot_id == seen["first"].snapshot_id
    assert seen["workspace"].state == "ACTIVE" and seen["workspace"].usage.snapshots >= 2

    labelled = seen["labelled"]
    assert [snap.snapshot_id for snap in labelled] == [seen["first"].snapshot_id]
    assert isinstance(labelled[0], Snapshot) and labelled[0].labels == {"kind": "manual"}
    assert labelled[0].message == "first" and labelled[0].created_at.tzinfo is not None
    every = [snap.snapshot_id for snap in seen["every"]]
    assert len(every) >= 3, "first, second, and the tree the rollback replaced"
    assert [snap.snapshot_id for snap in seen["one_by_one"]] == every, "a page of one, cursor after cursor"
    assert {task.op for task in seen["tasks"]} >= {"init_workspace", "snapshot_create", "snapshot_diff", "set_current"}
    types = [event.type for event in seen["events"]]
    assert types[:2] == ["workspace.created", "task.created"] and "current.changed" in types, "oldest first"

    assert isinstance(seen["drop_current"], ConflictSnapshotInUse)
    assert seen["drop_current"].status == 409 and seen["drop_current"].code == "WVS_CONFLICT_SNAPSHOT_IN_USE"
    missing = seen["missing"]
    assert isinstance(missing, NotFound) and missing.status == 404 and missing.request_id
    assert "WVS_NOT_FOUND" in str(missing) and missing.request_id in str(missing)
    assert seen["keyed"][0] == seen["keyed"][1], "the same Idempotency-Key answers the same task"
    assert isinstance(seen["mismatch"], ConflictIdempotentMismatch)


async def test_wait_reports_each_failed_attempt_with_its_reason(database, mount, start_service) -> None:
    from tests.conftest import make_config

    service = await start_service(
        make_config(database, mount, executor={"quiesce_timeout": "300ms"}, worker={"max_attempts": 2})
    )

    def no_agent() -> tuple[Task, list[Task]]:
        with Client(service.api_url) as client:
            client.create_workspace("no-agent", owner="programs").wait(timeout=30)
            progress: list[Task] = []
            task = client.create_snapshot("no-agent").wait(timeout=60, on_progress=progress.append)
            return task, progress

    task, progress = await asyncio.to_thread(no_agent)
    assert task.status == "DEAD" and task.attempt == 2
    failed = [seen for seen in progress if seen.status == "FAILED"]
    assert failed and failed[0].attempt == 1
    assert failed[0].error is not None and failed[0].error.reason == "QUIESCE_TIMEOUT", "each attempt says why"
    assert task.error is not None and task.error.code == "WVS_EXECUTOR_ERROR"


def test_an_answer_with_fields_a_newer_wvs_added_still_reads() -> None:
    read = sdk_calls.get_task("x").read
    task = read({"task_id": "x", "status": "PENDING", "attempt": 0, "shiny_new_field": [1, 2]})
    assert task.status == "PENDING" and task.extra == {"shiny_new_field": [1, 2]} and not task.terminal


@pytest.mark.parametrize("retries", [0, 2])
def test_an_unreachable_service_is_its_own_error(retries: int) -> None:
    from wvs_client import WvsUnreachable

    with Client("http://127.0.0.1:9", retries=retries, backoff=0.01) as client, pytest.raises(WvsUnreachable) as raised:
        client.list_workspaces()
    assert raised.value.code == "WVS_UNREACHABLE" and raised.value.status is None
    assert "127.0.0.1:9" in str(raised.value)
    assert raised.value.request_id == "" and "request_id" not in str(raised.value), "no server saw the request"


async def test_wait_gives_up_after_its_timeout_with_the_last_state_seen(database, tmp_path, start_service) -> None:
    from tests.conftest import make_config
    from wvs_client import WaitTimeout

    service = await start_service(make_config(database, tmp_path), planes=("api",))  # nobody runs the tasks

    def wait_on_a_pending_task() -> tuple[WaitTimeout, float]:
        with Client(service.api_url) as client:
            created = client.create_workspace("sdk-pending", owner="programs")
            started = time.monotonic()
            with pytest.raises(WaitTimeout) as raised:
                created.wait(timeout=0.5)
            return raised.value, time.monotonic() - started

    error, waited = await asyncio.to_thread(wait_on_a_pending_task)
    assert error.task.status == "PENDING" and isinstance(error, TimeoutError)
    assert 0.5 <= waited < 2.0


@pytest.mark.parametrize("hostile_id", ["..", "."])
async def test_an_id_that_is_a_dot_segment_names_no_other_route(wvs, hostile_id: str) -> None:
    """An id a program got from elsewhere (a model, a file) may be ``..``: sent raw, the URL ``…/snapshots/..``
    is ``DELETE /v1/workspaces/{wsid}`` once normalized — dropping a "snapshot" disabled the workspace."""
    await create_workspace(wvs, "dots")

    def drop() -> WvsError | None:
        with Client(str(wvs.base_url)) as client:
            try:
                client.drop_snapshot("dots", hostile_id)
            except WvsError as error:
                return error
            return None

    error = await asyncio.to_thread(drop)
    assert isinstance(error, BadRequest), error
    assert (await wvs.get("/v1/workspaces/dots")).json()["state"] == "ACTIVE"


async def test_a_label_key_holding_an_equals_sign_is_refused_not_read_as_another_filter(wvs) -> None:
    """``label=a=b=c`` is the filter a="b=c": a key "a=b" must not list the snapshots labelled a="b=c"."""
    await create_workspace(wvs, "eqlabels")
    with QuiesceResponder(wvs.mount_path / "eqlabels").running_in_thread():

        def list_with_an_equals_key() -> Exception | list[Snapshot]:
            with Client(str(wvs.base_url)) as client:
                assert client.create_snapshot("eqlabels", labels={"a": "b=c"}).wait(timeout=30).succeeded
                try:
                    return client.list_snapshots("eqlabels", labels={"a=b": "c"}).items
                except ValueError as error:
                    return error

        answer = await asyncio.to_thread(list_with_an_equals_key)
    assert isinstance(answer, ValueError) and "a=b" in str(answer), answer
