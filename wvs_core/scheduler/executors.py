"""The executors a scheduler calls: rendezvous routing per workspace, failover, a deadline, forwarded cancels."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping

import grpc

from wvs_core.errors import ErrorCode
from wvs_core.models import ExecutionRequest, ExecutionResult, Task
from wvs_core.ops import TaskOp
from wvs_core.rpc.client import ExecutorClient, ExecutorUnavailable

log = logging.getLogger(__name__)

CancelRequested = Callable[[], Awaitable[bool]]
"""Whether the task being run was asked to stop; polled while an executor works on it."""


class CallFailed(Exception):
    """No executor answered: ``reason`` is EXECUTOR_TIMEOUT, EXECUTOR_ERROR or EXECUTOR_UNAVAILABLE."""

    def __init__(self, reason: str, message: str, code: ErrorCode = ErrorCode.EXECUTOR_ERROR) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code


def executor_request(task: Task, op: TaskOp, facts: Mapping[str, str]) -> ExecutionRequest:
    """The gRPC request for ``task``: its params, with the claim's ``facts`` added."""
    params = {**task.params, **facts}
    return ExecutionRequest(
        task_id=task.task_id, wsid=task.wsid, op=op.wire_name, params=params, request_id=task.request_id or ""
    )


class ExecutorPool:
    """A client per executor address (over TLS with ``credentials``); a cancel request is looked for every
    ``cancel_poll`` seconds while a call runs."""

    def __init__(self, addrs: list[str], credentials: grpc.ChannelCredentials | None, cancel_poll: float) -> None:
        self.clients = [ExecutorClient(addr, credentials) for addr in addrs]
        self.cancel_poll = cancel_poll

    def __iter__(self) -> Iterator[ExecutorClient]:
        return iter(self.clients)

    def executors_for(self, wsid: str) -> list[ExecutorClient]:
        """Executors in the order a workspace tries them: stable per workspace (rendezvous hashing), so a
        workspace sticks to one executor and moves only when that one is down."""
        return sorted(self.clients, key=lambda c: zlib.crc32(f"{wsid}|{c.addr}".encode()), reverse=True)

    async def call(
        self, request: ExecutionRequest, timeout: float, cancel_requested: CancelRequested
    ) -> ExecutionResult:
        """The answer of the workspace's executor, failing over to the next one while one is down, within
        ``timeout`` seconds end to end. Raises CallFailed when none answered."""
        deadline = time.monotonic() + timeout
        unavailable: list[str] = []
        for executor in self.executors_for(request.wsid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            watcher = asyncio.create_task(self._forward_cancel(request.task_id, executor, cancel_requested))
            try:
                return await executor.execute(request, timeout=remaining)
            except TimeoutError as error:
                raise CallFailed("EXECUTOR_TIMEOUT", str(error), ErrorCode.EXECUTOR_TIMEOUT) from None
            except ExecutorUnavailable as error:
                if error.reachable:
                    raise CallFailed("EXECUTOR_ERROR", str(error)) from None
                log.warning("executor %s is down; trying the next one", executor.addr)
                unavailable.append(str(error))
            finally:
                watcher.cancel()
        if not unavailable:
            message = f"no executor answered within {timeout}s"
            raise CallFailed("EXECUTOR_TIMEOUT", message, ErrorCode.EXECUTOR_TIMEOUT)
        raise CallFailed("EXECUTOR_UNAVAILABLE", "; ".join(unavailable))

    async def close(self) -> None:
        """Close every client's channel."""
        for client in self.clients:
            await client.close()

    async def _forward_cancel(self, task_id: str, executor: ExecutorClient, cancel_requested: CancelRequested) -> None:
        """While the executor works, pass a cancel request on to it (it stops at its next safe point)."""
        while True:
            await asyncio.sleep(self.cancel_poll)
            try:
                # Not found yet: the op may still be waiting to start on the executor; ask again.
                if await cancel_requested() and await executor.cancel(task_id):
                    return
            except Exception:
                log.warning("could not forward a cancel request", exc_info=True)
