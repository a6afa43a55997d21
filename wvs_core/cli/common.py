"""Helpers shared by the ``wvs`` commands."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click
import uvloop

from wvs_core.config import Config, load_config
from wvs_core.errors import ConfigError
from wvs_core.runtime import Service

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="WVS_CONFIG",
    help="TOML config file (env: WVS_CONFIG); SPEC environment variables override it.",
)


def load_or_exit(config_path: Path | None) -> Config:
    """The config, or a clean CLI error naming the bad key."""
    try:
        return load_config(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def run_service(service: Service, on_started: str | None = None) -> None:
    """Run ``service`` until SIGINT/SIGTERM, then shut it down gracefully; on uvloop, libuv's event loop, where
    the socket I/O of every request, statement and gRPC call costs less CPU than on asyncio's own loop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.request_stop)
        await service.start()
        if on_started:
            click.echo(on_started.format(api_url=service.api_url, executor_addr=service.executor_addr), err=True)
        try:
            await service.wait()
        finally:
            await service.stop()

    try:
        uvloop.run(main())
    except ConfigError as error:  # found only at start (a mount that is not a WVS volume, a port taken…)
        raise click.ClickException(str(error)) from None
