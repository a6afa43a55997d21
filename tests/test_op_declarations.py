"""Core knows no op by name: drop protection and fsck follow what each op declares (``references``,
``live_trees``), a third party's op included."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import StartService, make_config
from tests.helpers import create_workspace, default_fsck, key, wait_task
from tests.plugins.failing_ops import OpOverrides
from wvs_controlfile import NoQuiesce
from wvs_core.db.consistency import ConsistencyStore
from wvs_core.db.store import Store, Submission, TaskSpec
from wvs_core.fsck import Fsck
from wvs_core.ids import uuid7
from wvs_core.models import ExecutionResult
from wvs_core.ops import ExecutionContext, TaskOp
from wvs_core.scope import EVERYTHING
from wvs_juicefs.backend import JuiceFSBackend


class Export(TaskOp):
    """A third party's op: it reads a snapshot (``source``) and leaves a live tree (``scratch``) behind."""

    name = "export"
    params_type = dict

    def references(self, params: Mapping[str, Any]) -> list[str]:
        return [params["source"]]

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        return {params["scratch"]: params["source"]}

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        return ExecutionResult(success=True)


async def test_a_plugin_ops_declarations_protect_its_snapshot_and_its_tree(
    database: str, mount: Path, start_service: StartService
) -> None:
    config = make_config(database, mount, plugins={"quiesce": "none"})
    service = await start_service(config, extra_plugins=(OpOverrides(Export()),))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "declared")
        snap = (await client.post("/v1/workspaces/declared/snapshots", json={}, headers=key())).json()
        assert (await wait_task(client, snap["task_id"]))["status"] == "SUCCEEDED"
        await service.stop()  # no scheduler: the export task stays PENDING

        api = await start_service(config, planes=("api",), extra_plugins=(OpOverrides(Export()),))
        engine = create_async_engine(database)
        try:
            params = {"source": snap["snapshot_id"], "scratch": uuid7()}
            store = Store(engine, service.registry.queues["postgres"](engine, {}))
            submission = Submission(uuid7(), "hash", uuid7(), {"type": "test"})
            spec = TaskSpec("export", params, 5, 60)
            export = (await store.submit_task("declared", spec, submission, scope=EVERYTHING)).task
            async with httpx.AsyncClient(base_url=api.api_url or "", timeout=30) as admin:
                drop = await admin.delete(f"/v1/workspaces/declared/snapshots/{snap['snapshot_id']}", headers=key())
            assert drop.status_code == 409, drop.text
            assert export.task_id in drop.json()["error"]["message"], "the export task is why"

            (mount / "declared" / "live" / params["scratch"]).mkdir()  # what the export left, then succeeded
            async with engine.begin() as conn:
                query = "UPDATE wvs.tasks SET status = 'SUCCEEDED', ended_at = now() WHERE task_id = :id"
                await conn.execute(sa.text(query), {"id": export.task_id})
            scratch = {
                "kind": "live_tree_unaccounted",
                "detail": f"{mount / 'declared' / 'live' / params['scratch']} (tasks of ops not loaded here: export)",
            }
            # Without the plugin fsck cannot know who made the tree: reported for a person, never pruned.
            unaware = await default_fsck(engine, mount).run("declared", fix=True, prune=True)
            assert [{"kind": f.kind, "detail": f.detail} for f in unaware.findings] == [scratch]
            assert not unaware.findings[0].fixed and (mount / "declared" / "live" / params["scratch"]).is_dir()
            storage, quiesce = JuiceFSBackend({}), NoQuiesce({})
            aware = await Fsck(
                ConsistencyStore(engine), mount, storage, quiesce, api.registry.live_trees, api.registry.kept_trees
            ).run()
            assert aware.findings == [], "the export declared its tree: fsck keeps it"
        finally:
            await engine.dispose()
