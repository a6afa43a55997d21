"""The scheduler's gRPC client for the executor plane."""

from __future__ import annotations

import grpc

from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.rpc import executor_pb2, executor_pb2_grpc
from wvs_core.rpc.codec import request_to_pb, result_from_pb


class ExecutorUnavailable(Exception):
    """The executor could not be reached or failed to answer the call."""

    def __init__(self, message: str, *, reachable: bool) -> None:
        super().__init__(message)
        self.reachable = reachable  # False: nothing answered (down or unreachable): try another executor


class ExecutorClient:
    """Calls ``ExecuteTask`` on one executor address, over TLS when given ``credentials``."""

    def __init__(self, addr: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.addr = addr
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(addr)
        else:
            self._channel = grpc.aio.secure_channel(addr, credentials)
        self._stub = executor_pb2_grpc.ExecutorServiceStub(self._channel)

    async def execute(self, request: ExecutionRequest, timeout: float) -> ExecutionResult:
        """Run one op; raises ExecutorUnavailable on transport errors, TimeoutError after ``timeout``."""
        try:
            response = await self._stub.ExecuteTask(request_to_pb(request), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"executor {self.addr} did not answer within {timeout:.0f}s") from None
            raise _unavailable(self.addr, error) from None
        return result_from_pb(response)

    async def cancel(self, task_id: str) -> bool:
        """Ask the executor to stop ``task_id`` at its next safe point; True when it was running there."""
        try:
            response = await self._stub.CancelTask(executor_pb2.CancelTaskRequest(task_id=task_id), timeout=10)
        except grpc.aio.AioRpcError as error:
            raise _unavailable(self.addr, error) from None
        return bool(response.found)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(grace=None)


def _unavailable(addr: str, error: grpc.aio.AioRpcError) -> ExecutorUnavailable:
    return ExecutorUnavailable(
        f"executor {addr}: {error.code().name}: {error.details()}",
        reachable=error.code() != grpc.StatusCode.UNAVAILABLE,
    )
