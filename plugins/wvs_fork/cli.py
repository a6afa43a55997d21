"""``wvsctl snapshot fork``: create a workspace whose first live tree is a clone of a snapshot."""

from __future__ import annotations

import getpass

import click

from wvs_core.cli.client import client
from wvs_core.cli.output import write_options
from wvs_core.cli.wvsctl import accepted


@click.command("fork")
@click.argument("wsid")
@click.argument("snapshot_id")
@click.argument("new_wsid")
@click.option("--owner", help="Owner of the new workspace (admin only for another owner than yours).")
@write_options
@click.pass_context
def snapshot_fork(
    ctx: click.Context,
    wsid: str,
    snapshot_id: str,
    new_wsid: str,
    owner: str | None,
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """Create workspace NEW_WSID starting from SNAPSHOT_ID of WSID (a `workspace_fork`); with --wait, until it
    is ACTIVE."""
    if owner is None and client(ctx).connection.token is None:
        owner = getpass.getuser()
    answer = client(ctx).fork_snapshot(wsid, snapshot_id, new_wsid, owner, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)
