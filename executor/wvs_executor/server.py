"""The gRPC servicer (thin) and the server's lifecycle."""

from __future__ import annotations

import logging

import grpc

from wvs_core.rpc import executor_pb2, executor_pb2_grpc
from wvs_core.rpc.codec import request_from_pb, result_to_pb
from wvs_executor.runner import InvalidRequest, OpRunner

log = logging.getLogger(__name__)


class ExecutorService(executor_pb2_grpc.ExecutorServiceServicer):
    """Translates gRPC calls to ``OpRunner.run``; invalid requests are INVALID_ARGUMENT, never UNKNOWN."""

    def __init__(self, runner: OpRunner) -> None:
        self.runner = runner

    async def ExecuteTask(
        self, request: executor_pb2.ExecuteTaskRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ExecuteTaskResponse:
        """Run one op."""
        try:
            result = await self.runner.run(request_from_pb(request))
        except (InvalidRequest, ValueError) as error:  # ValueError: a param that is not JSON
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Exception:
            log.exception("op %s of task %s crashed", request.op, request.task_id)
            await context.abort(grpc.StatusCode.INTERNAL, "the executor failed; see its log")
        return result_to_pb(result)

    async def CancelTask(
        self, request: executor_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.CancelTaskResponse:
        """Ask a running op to stop at its next safe point."""
        return executor_pb2.CancelTaskResponse(found=self.runner.cancel(request.task_id))


async def start_server(
    runner: OpRunner, addr: str, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    """Start serving on ``addr`` (port 0 picks a free port), over TLS when given ``credentials``; returns the
    server and its port."""
    server = grpc.aio.server()
    executor_pb2_grpc.add_ExecutorServiceServicer_to_server(ExecutorService(runner), server)
    port = server.add_insecure_port(addr) if credentials is None else server.add_secure_port(addr, credentials)
    if port == 0:
        raise OSError(f"executor cannot listen on {addr}")
    await server.start()
    log.info("executor listening on %s", addr.rsplit(":", 1)[0] + f":{port}")
    return server, port
