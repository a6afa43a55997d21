"""Shared fixtures: a real PostgreSQL (pgserver), a real JuiceFS mount, and WVS services in-process."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.metrics_stack import observed_wvs
from wvs_core.config import Config, config_from_dict
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.ids import uuid7
from wvs_core.migrate import upgrade
from wvs_core.plugins import PluginRegistry
from wvs_core.runtime import Service
from wvs_juicefs.volume import JuiceFSVolume, fuse_unavailable_reason

TEMPLATE_DB = "wvs_template"
_mount_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One real PostgreSQL server for the session, stopped at the end."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    server.start()
    try:
        server.psql(f"CREATE DATABASE {TEMPLATE_DB};")
        upgrade(server.dsn(TEMPLATE_DB))
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def fresh_database(postgres: EmbeddedPostgres, template: str = TEMPLATE_DB) -> Iterator[str]:
    """A fresh database copied from ``template`` (by default the migrated, empty one), dropped on exit;
    yields its DSN."""
    name = f"t_{uuid7().replace('-', '')[-16:]}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {template};")
    try:
        yield postgres.dsn(name)
    finally:
        postgres.psql(f"DROP DATABASE {name} WITH (FORCE);")


@pytest.fixture
def database(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, migrated database per test; returns its DSN."""
    with fresh_database(postgres) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def juicefs_volume(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JuiceFSVolume]:
    """A real JuiceFS volume (sqlite3 metadata, local files), unmounted at the end."""
    reason = fuse_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the JuiceFS tests, but FUSE is unusable: {reason}")
        pytest.skip(f"JuiceFS needs FUSE: {reason}")
    volume = JuiceFSVolume(tmp_path_factory.mktemp("juicefs")).start()
    try:
        yield volume
    finally:
        volume.close()


@pytest.fixture
def mount(juicefs_volume: JuiceFSVolume) -> Path:
    """A directory of its own on the JuiceFS mount for this test (the executor's mount_path)."""
    path = juicefs_volume.mount_path / f"t{os.getpid()}-{next(_mount_counter)}"
    path.mkdir()
    return path


def make_config(database: str, mount: Path, storage: str = "juicefs", **sections: dict[str, Any]) -> Config:
    """A test config: loopback ports chosen by the OS, fast polling and retries."""
    data: dict[str, Any] = {
        "database": {"dsn": database, "pool_size": 5},
        "api": {"listen_addr": "127.0.0.1:0"},
        "worker": {"poll_interval": "200ms", "retry_base": "50ms", "concurrency": 4},
        "executor": {"grpc_addr": "127.0.0.1:0", "mount_path": str(mount), "quiesce_timeout": "5s"},
        "plugins": {"storage": storage},
        "log_level": "info",
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return config_from_dict(data)


StartService = Callable[..., Awaitable[Service]]


@pytest.fixture
async def start_service() -> AsyncIterator[StartService]:
    """Start WVS planes in this event loop; every service started is stopped after the test."""
    started: list[Service] = []

    async def start(
        config: Config,
        planes: tuple[str, ...] = ("api", "worker", "executor"),
        schedulers: int = 1,
        extra_plugins: tuple[object, ...] = (),
    ) -> Service:
        registry = PluginRegistry.load(config.plugins, extra=extra_plugins)
        service = Service(config, registry, planes=planes, schedulers=schedulers, serve_metrics=False)
        started.append(service)
        await service.start()
        return service

    yield start
    for service in reversed(started):
        await service.stop()


@pytest.fixture
async def wvs(database: str, mount: Path, start_service: StartService) -> AsyncIterator[Any]:
    """The whole service on JuiceFS with the control-json quiesce; yields a client bound to its API."""
    service = await start_service(make_config(database, mount))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        client.mount_path = mount  # type: ignore[attr-defined]
        client.service = service  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def observed(database: str, mount: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh WVS process scraped every second by a real VictoriaMetrics: their URLs (``api``, ``metrics``)."""
    with observed_wvs(database, mount, tmp_path) as urls:
        yield urls
