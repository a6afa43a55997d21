"""Quiesce protocols: ``control-json`` (the SPEC §6 handshake) and ``none``; plus ``wvs agent``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from wvs_client.responder import QuiesceResponder, ViewGone, missing_parts
from wvs_controlfile.protocol import ControlFileQuiesce, NoQuiesce
from wvs_core import hookimpl
from wvs_core.quiesce import QuiesceProtocol

__all__ = ["ControlFileQuiesce", "NoQuiesce", "QuiesceResponder"]

VIEW_GONE_GRACE = 10.0  # seconds ``wvs agent`` waits for a vanished view (a remount blip) before it gives up


@hookimpl(trylast=True)
def wvs_register_quiesce_protocols() -> list[type[QuiesceProtocol]]:
    """Provide ``control-json`` and ``none``."""
    return [ControlFileQuiesce, NoQuiesce]


def _shell(command: str | None) -> None:
    if command:
        subprocess.run(command, shell=True, check=True)


@click.command("agent")
# readable=False: an agent may only search its view's root (0710), never list it
@click.argument("workspace_root", type=click.Path(exists=True, file_okay=False, readable=False, path_type=Path))
@click.option("--on-freeze", help="Shell command run before answering FROZEN (stop your writes).")
@click.option("--on-resume", help="Shell command run on REQUEST_RESUME.")
def agent_command(workspace_root: Path, on_freeze: str | None, on_resume: str | None) -> None:
    """Answer WVS's quiesce requests for WORKSPACE_ROOT (<mount>/<wsid>) until SIGINT or SIGTERM, printing a line
    for each freeze and each resume. Exits 1 when WORKSPACE_ROOT/.wvs stays gone (the volume unmounted) for 10 s."""
    if missing := missing_parts(workspace_root):
        raise click.ClickException(
            f"{workspace_root} is not the root of an initialized workspace (<mount>/<wsid>): it has no "
            + " and no ".join(missing)
        )
    responder = QuiesceResponder(
        workspace_root,
        on_freeze=lambda: _shell(on_freeze),
        on_resume=lambda: _shell(on_resume),
        give_up_after=VIEW_GONE_GRACE,
    )
    lines = logging.StreamHandler()  # stderr, like the line below
    lines.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    responder_log = logging.getLogger("wvs_client.responder")
    responder_log.addHandler(lines)
    responder_log.setLevel(logging.INFO)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, responder.stop)
        click.echo(f"answering quiesce requests in {responder.control_file}", err=True)
        await responder.run()

    status = 0
    try:
        asyncio.run(main())
    except ViewGone as gone:
        click.echo(f"Error: {gone}: is the volume still mounted? Stopping.", err=True)
        status = 1
    # Stopped: leave without tearing down the ~1,000 modules the wvs CLI imported (0.3-0.6 s of a signal's
    # answer); nothing is left to flush but the log.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(status)


@hookimpl(trylast=True)
def wvs_register_commands(cli: click.Group) -> None:
    """Add ``wvs agent``."""
    cli.add_command(agent_command)
