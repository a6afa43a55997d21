"""Retention through the API and the worker's periodic job, on PostgreSQL and JuiceFS: a policy set per
workspace, the plan for a hand-computed table, and the job dropping exactly the plan's drop set — never the
current snapshot or a referenced one — audited as retention, once however many workers apply it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_config
from tests.helpers import create_workspace, key, wait_task
from wvs_core.db.engine import async_dsn
from wvs_core.ids import uuid7
from wvs_core.scheduler.retention import RetentionJob


async def insert_snapshots(
    database: str, wsid: str, times: list[datetime], labels: dict[int, dict[str, str]]
) -> list[str]:
    """Snapshot rows (no trees: retention reads rows only) at ``times``; their ids in that order."""
    ids = [uuid7() for _ in times]
    engine = create_async_engine(async_dsn(database))
    async with engine.begin() as conn:
        for index, (snapshot_id, when) in enumerate(zip(ids, times, strict=True)):
            await conn.execute(
                sa.text(
                    "INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path, created_at, labels)"
                    " VALUES (:id, :wsid, :path, :at, CAST(:labels AS jsonb))"
                ),
                {
                    "id": snapshot_id,
                    "wsid": wsid,
                    "path": f"/nowhere/{snapshot_id}",
                    "at": when,
                    "labels": json.dumps(labels.get(index, {})),
                },
            )
    await engine.dispose()
    return ids


# A year of daily snapshots at noon UTC, newest 2 days ago: 365 of them, index 0 the newest.
def year_of_days() -> list[datetime]:
    newest = (datetime.now(UTC) - timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    return [newest - timedelta(days=n) for n in range(365)]


async def test_policy_routes_and_a_plan_for_a_hand_computed_year(wvs, database: str) -> None:
    await create_workspace(wvs, "ret-plan")
    got = (await wvs.get("/v1/workspaces/ret-plan/retention")).json()
    assert (got["policy"], got["source"]) == (None, "config")
    everything = (await wvs.get("/v1/workspaces/ret-plan/retention:plan")).json()
    assert everything == {"keep": [], "drop": []}

    times = year_of_days()
    ids = await insert_snapshots(database, "ret-plan", times, {300: {"pin": "yes"}})
    policy = {"keep_last": 3, "keep_weekly": 4, "keep_labels": ["pin"]}
    put = await wvs.put("/v1/workspaces/ret-plan/retention", json=policy)
    assert put.status_code == 200, put.text
    assert (put.json()["policy"]["keep_last"], put.json()["source"]) == (3, "workspace")

    plan = (await wvs.get("/v1/workspaces/ret-plan/retention:plan")).json()
    kept = {item["snapshot_id"]: item["reasons"] for item in plan["keep"]}
    # By hand: the 3 newest are "last"; weekly takes the newest of each ISO week, newest first, 4 of them:
    # the newest snapshot's week (already kept by last, still counted) and the 3 weeks before it.
    expected: dict[str, list[str]] = {ids[n]: ["last snapshot"] for n in range(3)}
    weeks_seen: list[tuple[int, int]] = []
    for n, when in enumerate(times):
        week = when.isocalendar()[:2]
        if week not in weeks_seen and len(weeks_seen) < 4:
            weeks_seen.append(week)
            expected.setdefault(ids[n], []).append("weekly snapshot")
    expected[ids[300]] = ["has label pin"]
    assert kept == {snapshot_id: expected[snapshot_id] for snapshot_id in kept}
    assert set(kept) == set(expected)
    assert {item["snapshot_id"] for item in plan["drop"]} == set(ids) - set(expected)
    assert len((await wvs.get("/v1/workspaces/ret-plan/snapshots", params={"limit": "100"})).json()["items"]) == 100, (
        "the plan changes nothing"
    )

    for bad in ({"keep_last": -2}, {"keep_within": "3x"}, {"keep_labels": ["Bad"]}, {"keep_dayly": 1}):
        response = await wvs.put("/v1/workspaces/ret-plan/retention", json=bad)
        assert response.status_code == 400, (bad, response.text)
    cleared = await wvs.put("/v1/workspaces/ret-plan/retention", json={})
    assert (cleared.json()["policy"], cleared.json()["source"]) == (None, "config")
    again = (await wvs.get("/v1/workspaces/ret-plan/retention:plan")).json()
    assert again["drop"] == [], "no policy: keep everything"


async def test_the_job_drops_the_plans_drop_set_once_never_current_or_referenced(wvs, database: str) -> None:
    workspace = await create_workspace(wvs, "ret-apply")
    times = [datetime.now(UTC) - timedelta(hours=n + 1) for n in range(8)]
    ids = await insert_snapshots(database, "ret-apply", times, {})
    # The oldest is current: the workspace row is what protects it.
    engine = create_async_engine(async_dsn(database))
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE wvs.workspaces SET current_snapshot_id = :id WHERE wsid = 'ret-apply'"), {"id": ids[7]}
        )
    await engine.dispose()
    assert workspace["current_snapshot_id"] is None
    await wvs.put("/v1/workspaces/ret-apply/retention", json={"keep_last": 2})
    plan = (await wvs.get("/v1/workspaces/ret-apply/retention:plan")).json()
    assert [item["snapshot_id"] for item in plan["keep"]] == [ids[0], ids[1], ids[7]]
    assert plan["keep"][2]["reasons"] == ["protected: current"]
    drop = [item["snapshot_id"] for item in plan["drop"]]
    assert drop == ids[2:7]

    service = wvs.service
    other = RetentionJob(service.config, service.retention.registry, service.retention.store)
    drops_before = drops_counted()
    first, second = await asyncio.gather(service.retention.apply_all(), other.apply_all())
    created = first + second
    assert len(created) == len(drop), "two workers applying at once: one task per snapshot"
    assert drops_counted() - drops_before == len(drop)
    assert await other.apply_all() == [], "applying again creates nothing new"
    for task_id in created:
        task = await wait_task(wvs, task_id)
        assert (task["op"], task["status"]) == ("snapshot_drop", "SUCCEEDED"), task
    listed = (await wvs.get("/v1/workspaces/ret-apply/snapshots")).json()["items"]
    assert [item["snapshot_id"] for item in listed] == [ids[0], ids[1], ids[7]]
    audit = (await wvs.get("/v1/workspaces/ret-apply/audit", params={"limit": "100"})).json()["items"]
    created_rows = [row for row in audit if row["action"] == "task.created" and row["task_id"] in created]
    assert len(created_rows) == len(drop)
    assert all(row["actor"] == {"type": "retention"} for row in created_rows)


def drops_counted() -> float:
    """``wvs_retention_drops_total`` in this process (the worker plane runs in it)."""
    return REGISTRY.get_sample_value("wvs_retention_drops_total") or 0.0


async def test_the_job_keeps_a_snapshot_an_unfinished_task_names(database: str, mount, start_service) -> None:
    # The agent never answers: a snapshot_create holds the workspace's FIFO head RUNNING for up to 20 s, so a
    # rollback queued behind it stays PENDING, naming its snapshot, while the job applies the policy.
    service = await start_service(make_config(database, mount, executor={"quiesce_timeout": "20s"}))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "ret-ref")
        times = [datetime.now(UTC) - timedelta(hours=n + 1) for n in range(4)]
        ids = await insert_snapshots(database, "ret-ref", times, {})
        await client.put("/v1/workspaces/ret-ref/retention", json={"keep_last": 1})
        head = (await client.post("/v1/workspaces/ret-ref/snapshots", json={}, headers=key())).json()
        await wait_task(client, head["task_id"], until={"RUNNING"})
        rollback = await client.post("/v1/workspaces/ret-ref/current:set", json={"snapshot_id": ids[2]}, headers=key())
        assert rollback.status_code == 202, rollback.text
        rollback_id = rollback.json()["task_id"]

        plan = (await client.get("/v1/workspaces/ret-ref/retention:plan")).json()
        assert plan["keep"] == [
            {"snapshot_id": ids[0], "reasons": ["last snapshot"]},
            {"snapshot_id": ids[2], "reasons": [f"protected: referenced by task {rollback_id}"]},
        ]
        assert plan["drop"] == [{"snapshot_id": ids[1]}, {"snapshot_id": ids[3]}]

        drops_before = drops_counted()
        assert service.retention is not None
        created = await service.retention.apply("ret-ref")
        assert len(created) == 2 and drops_counted() - drops_before == 2
        dropping = [(await client.get(f"/v1/tasks/{task_id}")).json()["params"]["snapshot_id"] for task_id in created]
        assert sorted(dropping) == sorted([ids[1], ids[3]]), "the referenced snapshot is not among them"

        # The drops wait behind the head like any task; once it and the rollback are canceled they run.
        assert (await client.post(f"/v1/tasks/{rollback_id}:cancel")).json()["status"] == "CANCELED"
        await client.post(f"/v1/tasks/{head['task_id']}:cancel")
        assert (await wait_task(client, head["task_id"], timeout=30))["status"] == "CANCELED"
        for task_id in created:
            assert (await wait_task(client, task_id))["status"] == "SUCCEEDED"
        listed = (await client.get("/v1/workspaces/ret-ref/snapshots")).json()["items"]
        assert [item["snapshot_id"] for item in listed] == [ids[0], ids[2]]

        # The job's writes are recorded as retention's: the task.created event and audit row of each drop.
        events = (await client.get("/v1/events", params={"wsid": "ret-ref", "limit": "100"})).json()["items"]
        created_events = [e for e in events if e["type"] == "task.created" and e["task_id"] in created]
        assert len(created_events) == 2 and all(e["actor"] == {"type": "retention"} for e in created_events)
        audit = (await client.get("/v1/workspaces/ret-ref/audit", params={"limit": "100"})).json()["items"]
        created_rows = [row for row in audit if row["action"] == "task.created" and row["task_id"] in created]
        assert len(created_rows) == 2 and all(row["actor"] == {"type": "retention"} for row in created_rows)

        # No longer referenced, the snapshot is the next round's to drop.
        assert len(await service.retention.apply("ret-ref")) == 1
