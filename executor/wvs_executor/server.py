"""The gRPC servicer (thin) and the server's lifecycle."""

from __future__ import annotations

import logging

import grpc

from wvs_core.config import setting
from wvs_core.errors import StartupError
from wvs_core.listen import ensure_free
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
    """Start serving on ``addr`` (``executor.grpc_addr``; port 0 picks a free port), over TLS when given
    ``credentials``; returns the server and its port.

    Raises StartupError naming ``executor.grpc_addr`` when the address is taken. No ``SO_REUSEPORT``: a second
    executor on the same port is refused, not handed half the calls.
    """
    ensure_free(setting("executor.grpc_addr"), addr)  # gRPC would report a taken port in a log line of its own
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    executor_pb2_grpc.add_ExecutorServiceServicer_to_server(ExecutorService(runner), server)
    try:
        port = server.add_insecure_port(addr) if credentials is None else server.add_secure_port(addr, credentials)
    except RuntimeError as error:  # lost a race for the port since the check
        raise StartupError(f"{setting('executor.grpc_addr')}: cannot listen on {addr}: {error}") from None
    await server.start()
    log.info("executor listening on %s", addr.rsplit(":", 1)[0] + f":{port}")
    return server, port
