"""Running the planes: the API (uvicorn), schedulers and the executor, alone or together in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import attrs
import uvicorn
from prometheus_client import start_http_server

from wvs_core.api.app import create_app
from wvs_core.api.server import with_head_timeout
from wvs_core.auth import TokenFile
from wvs_core.config import Config, setting
from wvs_core.db.engine import async_dsn, asyncpg_dsn, check_database, create_engine
from wvs_core.db.outbox import Outbox
from wvs_core.db.store import Store
from wvs_core.dispatcher import Dispatcher
from wvs_core.errors import StartupError
from wvs_core.listen import bind, cannot_listen, split_addr
from wvs_core.notifier import Notifier
from wvs_core.plugins import PluginRegistry
from wvs_core.rpc.binding import check_executor_binding
from wvs_core.rpc.tls import channel_credentials, server_credentials
from wvs_core.scheduler import Scheduler
from wvs_core.scheduler.retention import RetentionJob

log = logging.getLogger(__name__)

PLANES = ("api", "worker", "executor")


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the process that embeds it decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signals to the embedding process."""
        yield


class Service:
    """Some or all of the planes of WVS in one event loop.

    Ports given as 0 are chosen by the OS; after ``start`` the real addresses are in ``api_url`` and
    ``executor_addr``, and an embedded worker is pointed at the embedded executor. Raises ConfigError,
    naming the key, for an executor that may not listen where configured (``check_executor_binding``), for
    unreadable TLS or token files, and, with the api or worker plane, for a missing or malformed
    ``database.dsn``. ``start`` raises StartupError, naming the setting, for what the configuration names but
    is not there: a database that does not answer, an address in use, a mount path that is not a volume.
    """

    def __init__(
        self,
        config: Config,
        registry: PluginRegistry | None = None,
        planes: tuple[str, ...] = PLANES,
        schedulers: int = 1,
        serve_metrics: bool = True,
    ) -> None:
        unknown = set(planes) - set(PLANES)
        if unknown:
            raise ValueError(f"unknown plane(s): {', '.join(sorted(unknown))}")
        if "executor" in planes:
            check_executor_binding(config.executor)
        if "api" in planes or "worker" in planes:
            async_dsn(config.database.dsn)
        self.config = config
        self.registry = registry or PluginRegistry.load(config.plugins)
        tokens_file = config.api.tokens_file
        self.tokens = TokenFile(tokens_file) if "api" in planes and tokens_file else None
        self.executor_credentials = server_credentials(config.executor.tls) if "executor" in planes else None
        self.worker_credentials = channel_credentials(config.worker.tls) if "worker" in planes else None
        self.planes = planes
        self.scheduler_count = schedulers
        self.serve_metrics = serve_metrics
        self.api_url: str | None = None
        self.executor_addr: str | None = None
        self.dispatcher: Dispatcher | None = None  # with the worker plane, once started
        self.retention: RetentionJob | None = None  # with the worker plane, once started
        self._stop = asyncio.Event()  # the API and the schedulers: stop taking work
        self._executor_stop = asyncio.Event()  # the executor: once this process's schedulers are done with it
        self._tasks: list[asyncio.Task[Any]] = []
        self._executor_tasks: list[asyncio.Task[Any]] = []
        self._closers: list[Any] = []

    async def start(self) -> None:
        """Start the planes: the executor first, so the worker has something to call. What a plane needs is
        checked before it starts: its address, its plugins' settings, then the database. On a StartupError,
        whatever started is stopped."""
        try:
            api_socket = bind(setting("api.listen_addr"), self.config.api.listen_addr) if "api" in self.planes else None
            if api_socket is not None:
                self._closers.append(api_socket.close)
            if self.serve_metrics:
                # One registry per process: serve it on the metrics address of the main plane here.
                plane = next(p for p in PLANES if p in self.planes)
                self._metrics(f"{plane}.metrics_addr", getattr(self.config, plane).metrics_addr)
            if "executor" in self.planes:
                await self._start_executor()
            if "worker" in self.planes:
                await self._start_worker()
            if api_socket is not None:
                if "worker" not in self.planes:  # else checked already
                    await check_database(self.config.database)
                await self._start_api(api_socket)
        except StartupError:
            await self.stop()
            raise

    async def wait(self) -> None:
        """Wait until ``stop`` is called or a plane dies."""
        stopping = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([stopping, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        for task in done - {stopping}:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def request_stop(self) -> None:
        """Ask every plane to shut down gracefully (safe from a signal handler)."""
        self._stop.set()

    async def stop(self) -> None:
        """Shut everything down in order: the API and the schedulers stop taking work and let running tasks
        finish (or release them), then the executor those tasks may still be calling, then the servers."""
        self._stop.set()
        await asyncio.gather(
            *(task for task in self._tasks if task not in self._executor_tasks), return_exceptions=True
        )
        self._executor_stop.set()
        await asyncio.gather(*self._executor_tasks, return_exceptions=True)
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                result = close()
                if asyncio.iscoroutine(result):
                    await result
        self._tasks.clear()
        self._executor_tasks.clear()
        self._closers.clear()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # --- planes ---------------------------------------------------------------------------------

    def _metrics(self, key: str, addr: str) -> None:
        host, port = split_addr(addr)
        try:
            server, _thread = start_http_server(port, addr=host)
        except OSError as error:
            raise cannot_listen(setting(key), addr, error) from None
        self._closers.append(server.shutdown)

    async def _start_executor(self) -> None:
        from wvs_executor.runner import OpRunner
        from wvs_executor.server import start_server

        settings = self.config.executor
        runner = OpRunner(self.config, self.registry)
        server, port = await start_server(runner, settings.grpc_addr, self.executor_credentials)
        # Undo what a crash of this (or another) executor left, without delaying start-up.
        recovery = asyncio.create_task(runner.recover_all(), name="wvs-executor-recovery")
        self._closers.append(recovery.cancel)
        host, _ = split_addr(settings.grpc_addr)
        self.executor_addr = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

        async def serve() -> None:
            await self._executor_stop.wait()
            await server.stop(grace=settings.shutdown_timeout)

        serving = asyncio.create_task(serve(), name="wvs-executor")
        self._tasks.append(serving)  # watched by wait()
        self._executor_tasks.append(serving)  # stopped last by stop()

    async def _start_worker(self) -> None:
        plugins = self.config.plugins
        # the notifiers' settings are checked before the database
        notifiers = self.registry.build_notifiers(plugins) if self.config.events.dispatch else []
        for notifier in notifiers:
            self._closers.append(notifier.close)
        await check_database(self.config.database)
        worker = self.config.worker
        if "executor" in self.planes and self.executor_addr:
            worker = attrs.evolve(worker, executor_addrs=[self.executor_addr])
        engine = create_engine(self.config.database)
        self._closers.append(engine.dispose)
        for _ in range(self.scheduler_count):
            queue = self.registry.queues[plugins.queue](engine, plugins.settings_for(plugins.queue))
            await queue.start()
            self._closers.append(queue.close)
            scheduler = Scheduler(worker, self.registry, queue, credentials=self.worker_credentials)
            self._tasks.append(asyncio.create_task(scheduler.run(self._stop), name="wvs-scheduler"))
        if self.config.events.dispatch:
            self._start_dispatcher(notifiers)
        retention_store = Store(engine, queue)  # creates drop tasks as the API does, on the worker's engine
        self._closers.append(retention_store.close)
        self.retention = RetentionJob(self.config, self.registry, retention_store)
        self._tasks.append(asyncio.create_task(self.retention.run(self._stop), name="wvs-retention"))

    def _start_dispatcher(self, notifiers: list[Notifier]) -> None:
        """The event dispatcher delivering to ``notifiers``, on an engine of its own: deliveries never wait for
        a scheduler's connection, nor a scheduler for theirs."""
        engine = create_engine(attrs.evolve(self.config.database, pool_size=2))
        self._closers.append(engine.dispose)
        subscriptions = [subscription for notifier in notifiers for subscription in notifier.subscriptions()]
        dsn = asyncpg_dsn(self.config.database.dsn)
        self.dispatcher = Dispatcher(Outbox(engine), dsn, subscriptions, self.config.events)
        self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stop), name="wvs-event-dispatcher"))

    async def _start_api(self, listening: socket.socket) -> None:
        host, _port = split_addr(self.config.api.listen_addr)
        server = _EmbeddedUvicorn(
            uvicorn.Config(
                create_app(self.config, self.registry, self.tokens, self._stop),
                log_config=None,
                access_log=False,
                http=with_head_timeout(self.config.api.read_timeout),
                ws="none",  # WVS speaks HTTP only: an Upgrade request is served as plain HTTP (api/server.py)
                timeout_graceful_shutdown=int(self.config.api.shutdown_timeout),
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[listening]), name="wvs-api")
        while not server.started:
            if serving.done():  # uvicorn ends a failed start with SystemExit, having logged why
                raise StartupError(f"the API did not start on {self.config.api.listen_addr}; see the log above")
            await asyncio.sleep(0.01)
        bound_port = listening.getsockname()[1]
        self.api_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound_port}"
        log.info("api listening on %s", self.api_url)

        async def stop_when_asked() -> None:
            await self._stop.wait()
            server.should_exit = True
            await serving

        self._tasks.append(asyncio.create_task(stop_when_asked(), name="wvs-api-stop"))
