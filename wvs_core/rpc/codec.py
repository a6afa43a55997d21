"""Protobuf messages to and from the domain models, in one place."""

from __future__ import annotations

import json

from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.rpc import executor_pb2


def request_to_pb(request: ExecutionRequest) -> executor_pb2.ExecuteTaskRequest:
    """Model → wire: each param's value as JSON, so it reaches the op with its type."""
    return executor_pb2.ExecuteTaskRequest(
        task_id=request.task_id,
        wsid=request.wsid,
        op=request.op,
        params={name: json.dumps(value) for name, value in request.params.items()},
        request_id=request.request_id,
    )


def request_from_pb(message: executor_pb2.ExecuteTaskRequest) -> ExecutionRequest:
    """Wire → model; ValueError when a param's value is not JSON."""
    return ExecutionRequest(
        task_id=message.task_id,
        wsid=message.wsid,
        op=message.op,
        params={name: json.loads(value) for name, value in message.params.items()},
        request_id=message.request_id,
    )


def result_to_pb(result: ExecutionResult) -> executor_pb2.ExecuteTaskResponse:
    """Model → wire."""
    return executor_pb2.ExecuteTaskResponse(
        success=result.success,
        noop=result.noop,
        error_code=result.error_code,
        error_message=result.error_message,
        results=result.results,
        retryable=result.retryable,
    )


def result_from_pb(message: executor_pb2.ExecuteTaskResponse) -> ExecutionResult:
    """Wire → model."""
    return ExecutionResult(
        success=message.success,
        noop=message.noop,
        error_code=message.error_code,
        error_message=message.error_message,
        results=dict(message.results),
        retryable=message.retryable,
    )
