"""``wvsctl snapshot diff``: submit a ``snapshot_diff`` and print its changes like ``git diff --stat``."""

from __future__ import annotations

from typing import Any

import click

from wvs_client import calls
from wvs_core.cli.client import client
from wvs_core.cli.output import emit_json, wants_json, write_options
from wvs_core.cli.progress import follow
from wvs_core.cli.wvsctl import accepted, succeeded
from wvs_diff.render import change_from_json, render_stat


@click.command("diff")
@click.argument("wsid")
@click.argument("snapshot_id")
@click.option("--against", default="current", show_default=True, help='Another snapshot id, or "current".')
@click.option("--quiesce", is_flag=True, help="Against current: freeze the agent's writers for the whole diff.")
@click.option(
    "--content-check",
    type=click.Choice(["metadata", "ctime", "full"]),
    help="When files of equal size are read  [default: ctime].",
)
@write_options
@click.pass_context
def snapshot_diff(
    ctx: click.Context,
    wsid: str,
    snapshot_id: str,
    against: str,
    quiesce: bool,
    content_check: str | None,
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """What changed from SNAPSHOT_ID of WSID to another snapshot or to current. With --wait, the changes:
    like `git diff --stat`, or with --json the change items."""
    params: dict[str, Any] = {"snapshot_id": snapshot_id, "against": against}
    if quiesce:
        params["quiesce"] = True
    if content_check is not None:
        params["content_check"] = content_check
    answer = client(ctx).send(calls.submit(wsid, "snapshot_diff", params, idempotency_key))
    if not wait:
        accepted(ctx, answer, wait, as_json, output)
        return
    task = follow(client(ctx), answer.task_id, quiet=wants_json(as_json, output))
    succeeded(task)
    items = list(client(ctx).iter_task_result(task.task_id))
    if wants_json(as_json, output):
        emit_json(items)
        return
    click.echo(render_stat(change_from_json(item) for item in items), nl=False)
    if task.result is not None and task.result["truncated"]:
        summary = task.result["summary"]
        total = sum(summary[kind] for kind in ("added", "removed", "modified", "type_changed", "meta_changed"))
        click.echo(f" (only the first {len(items)} of {total} changes are listed)")
