"""Every SPEC §10 metric exists and moves as the flow runs (scraped from /metrics before and after)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_config
from tests.helpers import create_workspace, key, wait_task
from wvs_controlfile import QuiesceResponder

SPEC_METRICS = (
    "wvs_http_requests_total",
    "wvs_http_request_duration_seconds",
    "wvs_active_requests",
    "wvs_task_total",
    "wvs_task_duration_seconds",
    "wvs_task_queue_depth",
    "wvs_task_retry_total",
    "wvs_lock_wait_seconds",
    "wvs_dequeue_empty_total",
    "wvs_workspace_state_transitions_total",
    "wvs_clone_duration_seconds",
    "wvs_clone_entries_total",
    "wvs_clone_fail_total",
    "wvs_quiesce_wait_seconds",
    "wvs_quiesce_timeout_total",
    "wvs_switch_duration_seconds",
    "wvs_executor_active_tasks",
)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await client.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


async def test_metrics_move_with_the_flow(database, mount, start_service) -> None:
    config = make_config(database, mount, executor={"quiesce_timeout": "300ms"}, worker={"retry_base": "50ms"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        exported = {family.name for family in text_string_to_metric_families((await client.get("/metrics")).text)}
        for metric in SPEC_METRICS:
            assert metric.removesuffix("_total") in exported, f"{metric} is not exported"
        before = await scrape(client)
        assert not any("wsid" in dict(labels) for _, labels in before)

        await create_workspace(client, "metered")
        root = mount / "metered"
        (root / "current" / "a.txt").write_text("a")
        with QuiesceResponder(root).running_in_thread():
            first = (await client.post("/v1/workspaces/metered/snapshots", json={}, headers=key())).json()
            await wait_task(client, first["task_id"])
            (root / "current" / "b.txt").write_text("b")
            second = (await client.post("/v1/workspaces/metered/snapshots", json={}, headers=key())).json()
            await wait_task(client, second["task_id"])
            rollback = await client.post(
                "/v1/workspaces/metered/current:set", json={"snapshot_id": first["snapshot_id"]}, headers=key()
            )
            assert (await wait_task(client, rollback.json()["task_id"]))["status"] == "SUCCEEDED"
        # Without the agent: a quiesce timeout, retried once, and so on.
        silent = (await client.post("/v1/workspaces/metered/snapshots", json={}, headers=key())).json()
        await wait_task(client, silent["task_id"], until={"FAILED", "DEAD"})
        await wait_task(client, silent["task_id"], until={"DEAD"}, timeout=30)
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("wvs_http_requests_total", route="/v1/workspaces", method="POST", code="202") == 1
    assert delta("wvs_http_requests_total", route="/v1/workspaces/{wsid}/snapshots", method="POST", code="202") == 3
    assert delta("wvs_http_request_duration_seconds_count", route="/v1/tasks/{task_id}", method="GET") > 0
    assert delta("wvs_task_total", op="snapshot_create", status="SUCCEEDED") == 2
    assert delta("wvs_task_total", op="set_current", status="SUCCEEDED") == 1
    assert delta("wvs_task_total", op="snapshot_create", status="DEAD") == 1
    assert delta("wvs_task_retry_total", op="snapshot_create") == 4
    assert delta("wvs_task_duration_seconds_count", op="init_workspace") == 1
    assert delta("wvs_workspace_state_transitions_total", **{"from": "PROVISIONING", "to": "ACTIVE"}) == 1
    assert delta("wvs_lock_wait_seconds_count") >= 4
    assert delta("wvs_dequeue_empty_total") > 0
    assert delta("wvs_clone_duration_seconds_count", op="snapshot_create") == 2
    # Two clones: the snapshot into the new live tree, and the replaced tree into the kept snapshot.
    assert delta("wvs_clone_duration_seconds_count", op="set_current") == 2
    assert delta("wvs_clone_entries_total", op="snapshot_create") >= 3
    assert delta("wvs_quiesce_wait_seconds_count") == 3
    assert delta("wvs_quiesce_timeout_total") == 5
    assert delta("wvs_clone_fail_total", reason="QUIESCE_TIMEOUT") == 5
    assert delta("wvs_switch_duration_seconds_count") == 1
    assert value(after, "wvs_executor_active_tasks") == 0
    assert value(after, "wvs_active_requests") >= 0
