"""AsyncClient against a running WVS on JuiceFS: the generic submit, forks, restores, retention, the audit
trail, and the event log read to its end and tailed."""

from __future__ import annotations

import asyncio

from wvs_client import AsyncClient, Event, Gone
from wvs_client.responder import QuiesceResponder


async def test_an_async_program_submits_forks_restores_and_tails_events(wvs) -> None:
    root = wvs.mount_path / "sdk-async"
    async with AsyncClient(str(wvs.base_url)) as client:
        assert (await client.ready())["status"] == "ok"
        ops = {op.name: op for op in await client.list_ops()}
        assert "snapshot_create" in ops and ops["snapshot_create"].params_schema["type"] == "object"

        created = await client.create_workspace("sdk-async", owner="programs")
        assert (await created.wait(timeout=30)).succeeded
        (root / "current" / "keep.txt").write_text("v1\n")
        with QuiesceResponder(root).running_in_thread():
            # Any op by name, params as keywords: what a plugin's op needs, without an SDK change.
            submitted = await client.submit("sdk-async", "snapshot_create", message="via submit", labels={"by": "op"})
            assert submitted.op == "snapshot_create" and submitted.params["message"] == "via submit"
            done = await submitted.wait(timeout=30)
            snapshot_id = done.result["snapshot_id"]
            (root / "current" / "keep.txt").write_text("v2\n")
            restored = await client.restore_paths("sdk-async", snapshot_id, ["keep.txt"])
            assert (await restored.wait(timeout=30)).succeeded
        assert (root / "current" / "keep.txt").read_text() == "v1\n"

        forked = await client.fork_snapshot("sdk-async", snapshot_id, "sdk-fork", owner="programs")
        assert (await forked.wait(timeout=30)).succeeded
        assert (wvs.mount_path / "sdk-fork" / "current" / "keep.txt").read_text() == "v1\n"
        names = [workspace.wsid async for workspace in client.iter_workspaces()]
        assert names == ["sdk-fork", "sdk-async"], "newest first"

        policy = await client.set_retention("sdk-async", {"keep_last": 1})
        assert policy.source == "workspace" and policy.policy["keep_last"] == 1
        assert (await client.get_retention("sdk-async")).effective["keep_last"] == 1
        plan = await client.plan_retention("sdk-async")
        assert {kept["snapshot_id"] for kept in plan.keep} | {dropped["snapshot_id"] for dropped in plan.drop}

        actions = [row.action async for row in client.iter_audit("sdk-async")]
        assert "workspace.retention_set" in actions and "task.created" in actions

        logged = [event async for event in client.events(wsid="sdk-async", follow=False)]
        assert all(isinstance(event, Event) and event.wsid == "sdk-async" for event in logged)
        assert [event.event_id for event in logged] == sorted(event.event_id for event in logged)
        assert "snapshot.created" in {event.type for event in logged}

        # A tail: starts after the last event seen and yields what happens next.
        tail = client.events(wsid="sdk-async", after=logged[-1].event_id, poll_interval=0.05)
        disabled = await client.disable_workspace("sdk-async")
        assert disabled.state == "DISABLED"
        following = await asyncio.wait_for(anext(tail), timeout=10)
        assert following.type == "workspace.disabled" and following.event_id > logged[-1].event_id
        await tail.aclose()

        try:
            await client.create_snapshot("sdk-async")
        except Gone as error:
            assert error.status == 410 and error.request_id
        else:
            raise AssertionError("a write on a DISABLED workspace is 410")
