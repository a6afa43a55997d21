"""``GET /v1/ops``: every loaded op — a third party's too — with a JSON Schema of its params that a client
can build a form from and check params against."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import httpx
import jsonschema

from tests.conftest import StartService, make_config
from tests.plugins.failing_ops import OpOverrides
from wvs_core.models import ExecutionResult
from wvs_core.ops import ExecutionContext, TaskOp


@attrs.frozen
class Window:
    """A time window."""

    start: str
    minutes: int = 60


@attrs.frozen
class ExportParams:
    """What to export, and where."""

    target: str = attrs.field(metadata={"description": "a bucket URL"})
    formats: list[str] = attrs.field(factory=list)
    compression: Literal["none", "zstd"] = "zstd"
    limit: int | None = None
    window: Window | None = None
    labels: dict[str, str] = attrs.field(factory=dict)


class Export(TaskOp):
    """Export the workspace's current tree somewhere else.

    Longer text that is not the summary."""

    name = "export"
    params_type = ExportParams

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        return ExecutionResult(success=True)


async def test_every_loaded_op_is_listed_with_a_usable_params_schema(
    database: str, tmp_path: Path, start_service: StartService
) -> None:
    service = await start_service(
        make_config(database, tmp_path), planes=("api",), extra_plugins=(OpOverrides(Export()),)
    )
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        listed = (await client.get("/v1/ops")).json()
    assert listed["next_cursor"] is None
    ops = {item["name"]: item for item in listed["items"]}
    assert set(ops) == {
        "export",
        "init_workspace",
        "set_current",
        "snapshot_create",
        "snapshot_drop",
        "restore_paths",
        "snapshot_diff",
        "workspace_fork",
    }
    quiescing = {name for name, item in ops.items() if item["quiesces"]}
    assert quiescing == {"set_current", "snapshot_create", "restore_paths", "snapshot_diff"}, "may wait for a freeze"
    export = ops["export"]
    assert export["description"] == "Export the workspace's current tree somewhere else."
    schema = export["params_schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["target"] and schema["additionalProperties"] is False
    assert schema["properties"]["target"] == {"type": "string", "description": "a bucket URL"}
    assert schema["properties"]["compression"] == {"enum": ["none", "zstd"], "default": "zstd"}, "a plain default"
    good = {"target": "s3://b", "formats": ["tar"], "limit": 5, "window": {"start": "now"}, "labels": {"a": "b"}}
    jsonschema.validate(good, schema)
    for bad in ({}, {"target": 1}, {"target": "x", "compression": "lz4"}, {"target": "x", "other": 1}):
        assert not jsonschema.Draft202012Validator(schema).is_valid(bad), bad
    snapshot = ops["snapshot_create"]["params_schema"]
    assert snapshot["properties"]["message"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    # The id is the server's to choose: published, but marked so no client form offers it.
    assert snapshot["properties"]["snapshot_id"] == {"type": "string", "readOnly": True}
    assert "required" not in snapshot
    drop = ops["snapshot_drop"]["params_schema"]
    assert drop["required"] == ["snapshot_id"] and "readOnly" not in drop["properties"]["snapshot_id"]
