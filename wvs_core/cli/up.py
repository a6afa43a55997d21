"""``wvs up``: the whole service on one machine with no external server to install."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import attrs
import click

from wvs_core.cli.common import CannotStart, config_option, load_or_exit, run_service
from wvs_core.cli.discovery import UpState, default_data_dir, remove_state
from wvs_core.config import Config
from wvs_core.datadir import DataDirBusy, hold_data_dir
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.errors import StartupError
from wvs_core.listen import ensure_free
from wvs_core.logs import setup_logging
from wvs_core.migrate import upgrade
from wvs_core.plugins import PluginRegistry
from wvs_core.runtime import Service
from wvs_core.volume import LocalVolume

log = logging.getLogger("wvs.up")

DATABASE = "wvs"
PLAIN_DIRECTORIES = "localfs"  # the storage backend for a plain directory, when no plugin mounts a volume


def embedded_database(postgres: EmbeddedPostgres) -> str:
    """Create the WVS database on first use and migrate it; returns its DSN."""
    exists = postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        postgres.psql(f"CREATE DATABASE {DATABASE};")
    dsn = postgres.dsn(DATABASE)
    upgrade(dsn)
    return dsn


@click.command()
@config_option
@click.option("--port", default=8080, type=click.IntRange(0, 65535), show_default=True, help="API port (on 127.0.0.1).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="WVS_DATA_DIR, else the user's data directory",
    help="Where PostgreSQL's data, the JuiceFS volume, the workspaces and the state file (state.json: where "
    "this `wvs up` serves, read by wvsctl and `wvs fsck`) live.",
)
def up(config_path: Path | None, port: int, data_dir: Path) -> None:
    """Run everything: embedded PostgreSQL, a local JuiceFS volume (or localfs), api, worker, executor."""
    config = load_or_exit(config_path)
    setup_logging(config.log_level, "up")
    data_dir = data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CannotStart(f"--data-dir (WVS_DATA_DIR): cannot create {data_dir}: {error.strerror}") from None
    registry = PluginRegistry.load(config.plugins)
    try:
        with hold_data_dir(data_dir):
            ensure_free("--port", f"127.0.0.1:{port}")  # before PostgreSQL and the volume start
            run_embedded(config, registry, port, data_dir)
    except DataDirBusy as error:
        raise CannotStart(str(error)) from None


def run_embedded(config: Config, registry: PluginRegistry, port: int, data_dir: Path) -> None:
    """PostgreSQL, the volume and every plane on ``data_dir`` (held by this process) until SIGINT/SIGTERM;
    stops them all on the way out. While every plane serves, ``<data-dir>/state.json`` says where
    (``wvs_core.cli.discovery``). Raises StartupError for a configuration they refuse."""
    postgres = EmbeddedPostgres(data_dir / "postgres")
    volume: LocalVolume | None = None
    try:
        click.echo("starting PostgreSQL…", err=True)
        try:
            postgres.start()
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            raise StartupError(f"--data-dir: PostgreSQL in {data_dir / 'postgres'} did not start: {error}") from None
        click.echo("migrating the database…", err=True)
        dsn = embedded_database(postgres)
        try:
            volume = registry.pm.hook.wvs_local_volume(data_dir=data_dir, storage=config.plugins.storage)
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            raise StartupError(
                f"plugins.storage: the {config.plugins.storage} volume in {data_dir} did not mount ({error}); "
                'plugins.storage = "localfs" runs on plain directories'
            ) from None
        if volume is None:
            mount_path, storage = data_dir / "workspaces", PLAIN_DIRECTORIES
            mount_path.mkdir(exist_ok=True)
            if config.plugins.storage != PLAIN_DIRECTORIES:
                click.secho(
                    f"warning: no {config.plugins.storage} volume could be mounted here; using plain directories "
                    f"with the localfs backend in {mount_path}: snapshots are copies, not metadata clones",
                    fg="yellow",
                    err=True,
                )
        else:
            mount_path, storage = volume.mount_path, volume.storage
        config = attrs.evolve(
            config,
            database=attrs.evolve(config.database, dsn=dsn),
            api=attrs.evolve(config.api, listen_addr=f"127.0.0.1:{port}"),
            executor=attrs.evolve(config.executor, grpc_addr="127.0.0.1:0", mount_path=str(mount_path)),
            plugins=attrs.evolve(config.plugins, storage=storage),
        )
        # /metrics on the API serves every plane's metrics: they share this process.
        service = Service(config, registry, serve_metrics=False)

        def announce(service: Service) -> None:
            state = UpState(str(service.api_url), dsn, str(mount_path), storage, os.getpid(), str(data_dir))
            state_file = state.write()
            click.echo(
                f"WVS is up.\n  API:   {state.api_url}\n  mount: {mount_path} (storage: {storage})\n"
                f"  agent view: {mount_path}/<wsid> (mount only that into an agent's sandbox)\n"
                f"  database: {dsn}\n  data:  {data_dir}\n"
                f"  state: {state_file} (wvsctl and `wvs fsck` find this `wvs up` there)\nPress Ctrl-C to stop.",
                err=True,
            )

        run_service(service, on_started=announce)
    finally:
        remove_state(data_dir)
        if volume is not None:
            volume.close()
        postgres.stop()
        click.echo("WVS stopped.", err=True)
