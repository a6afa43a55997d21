"""Params reach the executor with their JSON types, not as ``str(value)``."""

from __future__ import annotations

import pytest

from wvs_core.models import ExecutionRequest
from wvs_core.rpc import executor_pb2
from wvs_core.rpc.codec import request_from_pb, request_to_pb


def test_params_keep_their_types_across_the_wire() -> None:
    params = {"count": 3, "ratio": 0.5, "tags": ["a", "b"], "message": None, "flag": False, "nested": {"k": "v"}}
    request = ExecutionRequest(task_id="t", wsid="ws-1", op="EXPORT", params=params, request_id="r")
    wire = executor_pb2.ExecuteTaskRequest.FromString(request_to_pb(request).SerializeToString())
    assert request_from_pb(wire) == request


def test_a_param_that_is_not_json_is_refused() -> None:
    wire = executor_pb2.ExecuteTaskRequest(task_id="t", wsid="ws-1", op="EXPORT", params={"count": "three"})
    with pytest.raises(ValueError):
        request_from_pb(wire)
