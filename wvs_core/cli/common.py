"""Helpers shared by the ``wvs`` commands."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import click
import uvloop

from wvs_core.config import Config, load_config
from wvs_core.errors import StartupError
from wvs_core.runtime import Service

STARTUP_FAILED = 2  # the exit status of a process that could not start as configured (docs/cli.md)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="WVS_CONFIG",
    help="TOML config file (env: WVS_CONFIG); SPEC environment variables override it.",
)


class CannotStart(click.ClickException):
    """A ``wvs`` process could not start as configured: printed as one line ``Error: …`` (naming the setting),
    exit status 2."""

    exit_code = STARTUP_FAILED


def load_or_exit(config_path: Path | None) -> Config:
    """The config, or a clean CLI error naming the bad key."""
    try:
        return load_config(config_path)
    except StartupError as error:
        raise CannotStart(str(error)) from None


def run_service(service: Service, on_started: Callable[[Service], None] | None = None) -> None:
    """Run ``service`` until SIGINT/SIGTERM, calling ``on_started(service)`` once every plane serves, then shut
    it down gracefully. Raises CannotStart when it cannot start (a database that does not answer, an address
    in use, a mount that is not a volume…). It runs on uvloop, libuv's event loop, where the socket I/O of every
    request, statement and gRPC call costs less CPU than on asyncio's own loop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.request_stop)
        await service.start()
        try:
            if on_started is not None:
                on_started(service)
            await service.wait()
        finally:
            await service.stop()

    try:
        uvloop.run(main())
    except StartupError as error:
        raise CannotStart(str(error)) from None
