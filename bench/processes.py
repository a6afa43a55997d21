"""WVS's planes as processes of their own, as deployed: ``wvs api``, ``wvs worker``, ``wvs executor``, ``wvs agent``.

Every process of a measurement reads one TOML config file (``Deployment``) and gets its own free loopback
ports through the SPEC §8 environment variables. Its CPU time and peak RSS are read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

from wvs_core.config import Config, config_from_dict

BIN = Path(sys.executable).parent
PLUGIN_MODULE = "bench.noop_plugin"
READY_TIMEOUT = 60.0  # seconds a process may take to import and start
STOP_TIMEOUT = 30.0  # seconds a process may take to stop gracefully before it is killed
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def toml(data: Mapping[str, Any]) -> str:
    """``data`` (top-level keys, then tables of tables) as TOML; strings as JSON strings, which TOML reads."""
    lines: list[str] = []

    def table(prefix: str, values: Mapping[str, Any]) -> None:
        plain = {key: value for key, value in values.items() if not isinstance(value, Mapping)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in plain.items())
        for key, value in values.items():
            if isinstance(value, Mapping):
                table(f"{prefix}.{key}" if prefix else key, value)

    table("", data)
    return "\n".join(lines) + "\n"


def bench_config(dsn: str, mount: Path, storage: str, quiesce: str, concurrency: int | None = None) -> dict[str, Any]:
    """WVS's defaults but for the database ``dsn`` (libpq form), the volume ``mount``, the plugins (``storage``,
    ``quiesce``, no notifiers, the bench's no-op ops), ``log_level = "warning"`` (no line per task) and, when
    given, ``worker.concurrency``."""
    return {
        "log_level": "warning",
        "database": {"dsn": dsn},
        "executor": {"mount_path": str(mount)},
        "plugins": {"storage": storage, "quiesce": quiesce, "notifiers": [], "modules": [PLUGIN_MODULE]},
        **({"worker": {"concurrency": concurrency}} if concurrency is not None else {}),
    }


def describe(config: Config) -> str:
    """The settings of ``config`` that matter for the figures."""
    worker, plugins = config.worker, config.plugins
    return (
        f"worker concurrency={worker.concurrency}, poll_interval={worker.poll_interval:g}s, lease={worker.lease:g}s; "
        f"database pool_size={config.database.pool_size} (and as many overflow) per process; "
        f"notifiers={plugins.notifiers} (events written to the outbox, none delivered); "
        f"log_level={config.log_level}; plugins.modules={plugins.modules}; storage={plugins.storage}; "
        "quiesce=none, control-json for the snapshot figure"
    )


@attrs.frozen
class Deployment:
    """The config file every process of one measurement reads (``bench_config``), and where their output goes."""

    config_path: Path
    config: Config
    logs: Path

    @classmethod
    def write(
        cls, directory: Path, dsn: str, mount: Path, storage: str, quiesce: str = "none", concurrency: int | None = None
    ) -> Deployment:
        """The config file in ``directory``, which also takes the processes' logs."""
        data = bench_config(dsn, mount, storage, quiesce, concurrency)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "wvs.toml"
        path.write_text(toml(data))
        return cls(path, config_from_dict(data), directory)


@attrs.define
class PeakMemory:
    """The highest peak RSS (MB) seen per plane over the processes that ended."""

    peaks: dict[str, float] = attrs.field(factory=dict)

    def saw(self, plane: str, megabytes: float) -> None:
        self.peaks[plane] = max(self.peaks.get(plane, 0.0), megabytes)


@attrs.frozen
class Running:
    """One WVS process: its plane, its process, and where it listens (``url``: HTTP; ``addr``: gRPC)."""

    plane: str
    process: asyncio.subprocess.Process
    url: str = ""
    addr: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (``/proc/PID/stat``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15

    def peak_rss_megabytes(self) -> float:
        """The process's peak resident set size (``VmHWM``), in MB; 0 once it has ended (asked to stop by
        ``planes``, which read it first)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except FileNotFoundError:
            return 0.0
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(found[1]) / 1024 if found else 0.0


async def wait_ready(running: Running, probe: httpx.AsyncClient) -> None:
    """Until the process serves: the API's ``/readyz``; a worker's scheduler has run its first (empty) claim,
    as its metrics say; the executor's gRPC port accepts connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while not await is_ready(running, probe):
        if running.process.returncode is not None:
            raise RuntimeError(f"wvs {running.plane} exited with {running.process.returncode}; see its log")
        if loop.time() > deadline:
            raise RuntimeError(f"wvs {running.plane} was not ready within {READY_TIMEOUT:g} s; see its log")
        await asyncio.sleep(0.05)


async def is_ready(running: Running, probe: httpx.AsyncClient) -> bool:
    try:
        if running.plane == "api":
            return (await probe.get(f"{running.url}/readyz")).status_code == 200
        if running.plane == "worker":
            metrics = (await probe.get(running.url)).text
            found = re.search(r"^wvs_dequeue_empty_total (\S+)", metrics, re.MULTILINE)
            return found is not None and float(found[1]) >= 1
        host, port = running.addr.rsplit(":", 1)
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        return True
    except (httpx.HTTPError, OSError):
        return False


@contextlib.asynccontextmanager
async def plane(
    deployment: Deployment, name: str, memory: PeakMemory, executor_addr: str = "", wait: bool = True
) -> AsyncIterator[Running]:
    """``wvs NAME`` (api, worker, executor) on free loopback ports, ready unless ``wait`` is False; at exit its
    peak RSS goes to ``memory`` and it is stopped (SIGTERM, then SIGKILL after ``STOP_TIMEOUT``). A worker
    calls the executor at ``executor_addr`` (default: the configured one, never called by the engine-only op)."""
    port, metrics = free_port(), free_port()
    env = {**os.environ, "WVS_CONFIG": str(deployment.config_path)}
    url = addr = ""
    if name == "api":
        env |= {"WVS_LISTEN_ADDR": f"127.0.0.1:{port}", "WVS_METRICS_ADDR": f"127.0.0.1:{metrics}"}
        url = f"http://127.0.0.1:{port}"
    elif name == "worker":
        env |= {"WVS_METRICS_ADDR": f"127.0.0.1:{metrics}"}
        if executor_addr:
            env["EXECUTOR_ADDRS"] = executor_addr
        url = f"http://127.0.0.1:{metrics}/metrics"
    else:
        addr = f"127.0.0.1:{port}"
        env |= {"EXECUTOR_GRPC_ADDR": addr, "EXECUTOR_METRICS_ADDR": f"127.0.0.1:{metrics}"}
    with (deployment.logs / f"{name}-{port}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "wvs"), name, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    running = Running(name, process, url, addr)
    try:
        if wait:
            async with httpx.AsyncClient(timeout=2) as probe:
                await wait_ready(running, probe)
        yield running
    finally:
        if process.returncode is None:
            memory.saw(name, running.peak_rss_megabytes())
        await stop(process)


@contextlib.asynccontextmanager
async def planes(deployment: Deployment, names: Sequence[str], memory: PeakMemory) -> AsyncIterator[list[Running]]:
    """``plane`` for each of ``names``, in that order (``"worker"`` may come more than once, ``"executor"`` once),
    all started at once and ready together (a start-up is mostly imports), and asked to stop at once at exit
    (each stop is a graceful shutdown of its own); the workers call that executor."""
    async with contextlib.AsyncExitStack() as stack:
        executor = None
        if "executor" in names:  # first: the workers are told its address
            executor = await stack.enter_async_context(plane(deployment, "executor", memory, wait=False))
        running = []
        for name in names:
            if name == "executor" and executor is not None:
                running.append(executor)
            else:
                addr = executor.addr if executor is not None else ""
                running.append(await stack.enter_async_context(plane(deployment, name, memory, addr, wait=False)))
        async with httpx.AsyncClient(timeout=2) as probe:
            await asyncio.gather(*(wait_ready(process, probe) for process in running))
        try:
            yield running
        finally:
            for each in running:
                if each.process.returncode is None:
                    memory.saw(each.plane, each.peak_rss_megabytes())
                    each.process.terminate()  # each plane's exit then waits for its own


@contextlib.asynccontextmanager
async def agent(workspace_root: Path, logs: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``wvs agent WORKSPACE_ROOT``: answers the workspace's control.json freeze and resume requests."""
    with (logs / f"agent-{workspace_root.name}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(BIN / "wvs"), "agent", str(workspace_root), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        yield process
    finally:
        await stop(process)


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (a graceful stop), SIGKILL if it is still running after ``STOP_TIMEOUT``."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
    await process.wait()


def print_logs(directory: Path, lines: int = 20) -> None:
    """The last ``lines`` of every process log below ``directory`` that has any, to stderr (a failed run's
    scratch directory goes away with it)."""
    for log in sorted(directory.rglob("*.log")):
        if text := log.read_text(errors="replace").strip():
            tail = "\n".join(text.splitlines()[-lines:])
            print(f"--- {log.relative_to(directory)} (last {lines} lines)\n{tail}", file=sys.stderr)
