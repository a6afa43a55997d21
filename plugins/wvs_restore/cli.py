"""``wvsctl snapshot restore``: submit a ``restore_paths`` through ``POST …/current:restore``."""

from __future__ import annotations

import click

from wvs_core.cli.client import client
from wvs_core.cli.output import write_options
from wvs_core.cli.wvsctl import accepted


@click.command("restore")
@click.argument("wsid")
@click.argument("snapshot_id")
@click.argument("paths", nargs=-1, required=True)
@write_options
@click.pass_context
def snapshot_restore(
    ctx: click.Context,
    wsid: str,
    snapshot_id: str,
    paths: tuple[str, ...],
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """Put PATHS (relative to the workspace's root) of SNAPSHOT_ID back into current of WSID; a path the
    snapshot lacks is removed, and the tree replaced is kept as a snapshot labelled auto=before-rollback."""
    answer = client(ctx).restore_paths(wsid, snapshot_id, paths, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)
