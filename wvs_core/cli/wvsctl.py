"""``wvsctl``: operate WVS through its REST API."""

from __future__ import annotations

import getpass
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import click

from wvs_client import Accepted, Client, Page, Retention, RetentionPlan, Task, WorkspaceCreated, calls, to_json
from wvs_core.cli.client import WvsctlGroup, client
from wvs_core.cli.discovery import default_api_url
from wvs_core.cli.obs import obs
from wvs_core.cli.output import (
    cell,
    emit_json,
    emit_record,
    emit_table,
    output_options,
    show,
    wants_json,
    write_options,
)
from wvs_core.cli.progress import follow
from wvs_core.errors import ConfigError
from wvs_core.plugins import make_plugin_manager

WORKSPACE_COLUMNS = ("wsid", "state", "owner", "current_snapshot_id", "created_at")
WORKSPACE_FIELDS = (
    "wsid",
    "state",
    "owner",
    "root_path",
    "current_path",
    "current_snapshot_id",
    "created_at",
    "updated_at",
)
SNAPSHOT_COLUMNS = ("snapshot_id", "created_at", "labels", "entries", "bytes", "message")
AUDIT_COLUMNS = ("event_id", "ts", "action", "task_id", "actor")
EVENT_COLUMNS = {"event_id": 8, "ts": 32, "type": 20, "wsid": 16, "task_id": 36}  # fixed widths: a tail streams
OP_DESCRIPTION_WIDTH = 60  # characters of an op's description per line of `op list`
EVENT_POLL_INTERVAL = 0.5  # seconds between reads of GET /v1/events once the tail has caught up
TASK_COLUMNS = ("task_id", "wsid", "op", "status", "attempt", "created_at")
TASK_FIELDS = (
    "task_id",
    "wsid",
    "op",
    "status",
    "attempt",
    "max_attempts",
    "created_at",
    "started_at",
    "ended_at",
    "next_run_at",
    "request_id",
    "params",
    "result",
    "error",
)
FINAL_TASK_FIELDS = ("task_id", "wsid", "op", "status", "attempt", "params")  # then its result, or its error


def print_versions(ctx: click.Context, _param: click.Parameter, given: bool) -> None:
    """``wvsctl --version``: the versions of both distributions it runs on, then exit."""
    if given and not ctx.resilient_parsing:
        click.echo(f"wvsctl: wvs {version('wvs')}, wvs-client {version('wvs-client')}")
        ctx.exit()


@click.group(cls=WvsctlGroup)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_versions,
    help="Show the versions of wvs and wvs-client, and exit.",
)
@click.option(
    "--api-url",
    envvar="WVS_API_URL",
    default=default_api_url,
    show_default="the running `wvs up`'s, else http://localhost:8080",
    help="WVS API base URL (env: WVS_API_URL).",
)
@click.option(
    "--token",
    envvar="WVS_TOKEN",
    default=None,
    help="Bearer token, when the API requires one (env: WVS_TOKEN; prefer the env var: argv is visible to ps).",
)
@click.pass_context
def cli(ctx: click.Context, api_url: str, token: str | None) -> None:
    """Operate WVS: workspaces, snapshots and tasks."""
    ctx.obj = ctx.with_resource(Client(api_url, token=token or None))


def show_page(
    page: Page[Any],
    as_json: bool,
    output: str,
    columns: tuple[str, ...],
    row: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> None:
    """Print one page of a list, with the command for the next page; ``row`` shapes an item for the table."""
    if wants_json(as_json, output):
        emit_json(to_json(page))
        return
    emit_table([row(to_json(item)) for item in page.items], columns)
    if page.next_cursor:
        click.echo(f"more: add --cursor {page.next_cursor}", err=True)


def accepted(
    ctx: click.Context, answer: Accepted[Task] | WorkspaceCreated[Task], wait: bool, as_json: bool, output: str
) -> None:
    """Report a write WVS accepted. Without ``wait``: its answer and the command to follow its task. With it:
    follow the task (progress on stderr), then print the final task — status, then result or error — and exit
    non-zero unless it SUCCEEDED; with ``--json`` the final task alone."""
    task_id = answer.task_id if isinstance(answer, Accepted) else answer.init_task_id
    if not wait:
        if wants_json(as_json, output):
            emit_json(to_json(answer))
            return
        record = {field: value for field, value in to_json(answer).items() if value is not None}
        emit_record(record, tuple(record))
        click.echo(f"follow it with: wvsctl task watch {task_id}")
        return
    final = follow(client(ctx), task_id, quiet=wants_json(as_json, output))
    show(to_json(final), (*FINAL_TASK_FIELDS, "result" if final.succeeded else "error"), as_json, output)
    succeeded(final)


def succeeded(task: Task) -> None:
    """Exit non-zero with the task's error code, reason and the request id that created it, unless ``task`` (a
    followed task) SUCCEEDED."""
    if not task.succeeded:
        error = task.error
        code = error.code if error is not None else f"WVS_TASK_{task.status}"
        reason = f" ({error.reason})" if error is not None and error.reason else ""
        message = error.message if error is not None else ""
        request = f" (request_id {task.request_id})" if task.request_id else ""
        raise click.ClickException(f"{code}: task {task.task_id} ended {task.status}{reason}: {message}{request}")


# --- workspace -----------------------------------------------------------------------------------


@cli.group()
def workspace() -> None:
    """Create and inspect workspaces."""


@workspace.command("create")
@click.argument("wsid")
@click.option("--owner", help="Owner recorded on the workspace  [default: the token's subject, else the current user]")
@write_options
@click.pass_context
def workspace_create(
    ctx: click.Context,
    wsid: str,
    owner: str | None,
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """Create workspace WSID."""
    if owner is None and client(ctx).connection.token is None:
        owner = getpass.getuser()
    answer = client(ctx).create_workspace(wsid, owner, idempotency_key=idempotency_key)
    accepted(ctx, answer, wait, as_json, output)


@workspace.command("get")
@click.argument("wsid")
@output_options
@click.pass_context
def workspace_get(ctx: click.Context, wsid: str, as_json: bool, output: str) -> None:
    """Show workspace WSID."""
    show(to_json(client(ctx).get_workspace(wsid)), WORKSPACE_FIELDS, as_json, output)


@workspace.command("list")
@click.option("--state", help="Only workspaces in this state.")
@click.option("--limit", type=int, help="Page size (1-100).")
@click.option("--cursor", help="Continue after a previous page.")
@output_options
@click.pass_context
def workspace_list(
    ctx: click.Context, state: str | None, limit: int | None, cursor: str | None, as_json: bool, output: str
) -> None:
    """List workspaces, newest first."""
    show_page(client(ctx).list_workspaces(state, cursor, limit), as_json, output, WORKSPACE_COLUMNS)


@workspace.command("retry-init")
@click.argument("wsid")
@write_options
@click.pass_context
def workspace_retry_init(
    ctx: click.Context, wsid: str, wait: bool, idempotency_key: str | None, as_json: bool, output: str
) -> None:
    """Start a new init task for WSID (only from INIT_FAILED)."""
    answer = client(ctx).retry_init(wsid, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)


@workspace.command("disable")
@click.argument("wsid")
@output_options
@click.pass_context
def workspace_disable(ctx: click.Context, wsid: str, as_json: bool, output: str) -> None:
    """Disable WSID for good: reads keep working, writes answer WVS_GONE."""
    show(to_json(client(ctx).disable_workspace(wsid)), ("wsid", "state", "updated_at"), as_json, output)


# --- snapshot ------------------------------------------------------------------------------------


@cli.group()
def snapshot() -> None:
    """Take and list snapshots."""


def label_pairs(_ctx: click.Context, param: click.Parameter, given: tuple[str, ...]) -> dict[str, str]:
    """``--label KEY=VALUE`` options as ``{key: value}``; BadParameter for one without ``=`` or a key given
    twice (the API judges keys and values)."""
    labels: dict[str, str] = {}
    for pair in given:
        key, separator, value = pair.partition("=")
        if not separator:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param=param)
        if key in labels:
            raise click.BadParameter(f"label {key!r} is given twice", param=param)
        labels[key] = value
    return labels


def snapshot_row(item: dict[str, Any]) -> dict[str, Any]:
    """A snapshot as the list table shows it: labels as ``key=value,...``."""
    labels = ",".join(f"{key}={value}" for key, value in sorted((item.get("labels") or {}).items()))
    return {**item, "labels": labels or None}


@snapshot.command("create")
@click.argument("wsid")
@click.option("--message", "-m", help="A note stored with the snapshot.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=label_pairs,
    help="A label stored with the snapshot (repeatable; at most 16).",
)
@write_options
@click.pass_context
def snapshot_create(
    ctx: click.Context,
    wsid: str,
    message: str | None,
    labels: dict[str, str],
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """Snapshot the current tree of WSID."""
    answer = client(ctx).create_snapshot(wsid, message, labels or None, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)


@snapshot.command("list")
@click.argument("wsid")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=label_pairs,
    help="Only snapshots carrying this label (repeatable: every one).",
)
@click.option("--limit", type=int, help="Page size (1-100).")
@click.option("--cursor", help="Continue after a previous page.")
@output_options
@click.pass_context
def snapshot_list(
    ctx: click.Context,
    wsid: str,
    labels: dict[str, str],
    limit: int | None,
    cursor: str | None,
    as_json: bool,
    output: str,
) -> None:
    """List the snapshots of WSID, newest first, with their labels, entries and bytes."""
    page = client(ctx).list_snapshots(wsid, labels or None, cursor, limit)
    show_page(page, as_json, output, SNAPSHOT_COLUMNS, snapshot_row)


@snapshot.command("drop")
@click.argument("wsid")
@click.argument("snapshot_id")
@write_options
@click.pass_context
def snapshot_drop(
    ctx: click.Context, wsid: str, snapshot_id: str, wait: bool, idempotency_key: str | None, as_json: bool, output: str
) -> None:
    """Delete SNAPSHOT_ID of WSID (refused while it is current or in use)."""
    answer = client(ctx).drop_snapshot(wsid, snapshot_id, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)


# --- current -------------------------------------------------------------------------------------


@cli.group()
def current() -> None:
    """See and roll back what agents see in current."""


@current.command("get")
@click.argument("wsid")
@output_options
@click.pass_context
def current_get(ctx: click.Context, wsid: str, as_json: bool, output: str) -> None:
    """Show the live tree current points to and the snapshot it came from."""
    fields = ("wsid", "current_path", "current_snapshot_id", "updated_at")
    show(to_json(client(ctx).get_current(wsid)), fields, as_json, output)


@current.command("set")
@click.argument("wsid")
@click.argument("snapshot_id")
@write_options
@click.pass_context
def current_set(
    ctx: click.Context, wsid: str, snapshot_id: str, wait: bool, idempotency_key: str | None, as_json: bool, output: str
) -> None:
    """Roll WSID back: current becomes a fresh clone of SNAPSHOT_ID (the replaced tree is kept)."""
    answer = client(ctx).set_current(wsid, snapshot_id, idempotency_key)
    accepted(ctx, answer, wait, as_json, output)


# --- retention -----------------------------------------------------------------------------------

COUNT_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
RETENTION_FIELDS = ("wsid", "source", "rules", "description")
PLAN_COLUMNS = ("snapshot_id", "created_at", "labels", "action", "reasons")


@cli.group()
def retention() -> None:
    """See, set and preview which snapshots a workspace keeps (restic forget rules)."""


def show_retention(answer: Retention, as_json: bool, output: str) -> None:
    """The ``…/retention`` body: as is with ``--json``, else the rules in force and where they come from."""
    if wants_json(as_json, output):
        emit_json(to_json(answer))
        return
    show({**to_json(answer), "rules": policy_rules(answer.effective)}, RETENTION_FIELDS, False, output)


def policy_rules(policy: dict[str, Any]) -> str:
    """A policy's rules that are on, as ``set`` takes them: ``--keep-last 3 --keep-label pin``; ``-``: none."""
    options = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in policy.items()
        if name != "keep_labels" and value not in (None, 0)
    ]
    options += [f"--keep-label {label}" for label in policy.get("keep_labels") or ()]
    return " ".join(options) or "-"


@retention.command("get")
@click.argument("wsid")
@output_options
@click.pass_context
def retention_get(ctx: click.Context, wsid: str, as_json: bool, output: str) -> None:
    """Show the policy WSID's snapshots are kept by: its own, else the config's default."""
    show_retention(client(ctx).get_retention(wsid), as_json, output)


def count_option(rule: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--keep-<rule> N``: a count, ``-1`` unlimited."""
    return click.option(
        f"--keep-{rule}",
        type=click.IntRange(min=-1),
        help=f"Keep the {'newest N' if rule == 'last' else f'newest snapshot of each of the last N {rule} periods'}"
        " (-1: unlimited).",
    )


@retention.command("set")
@click.argument("wsid")
@count_option("last")
@count_option("hourly")
@count_option("daily")
@count_option("weekly")
@count_option("monthly")
@count_option("yearly")
@click.option(
    "--keep-within",
    metavar="DURATION",
    help="Keep every snapshot within DURATION of the newest one: y, m (months), d, h, e.g. 30d, 1y2m.",
)
@click.option(
    "--keep-label",
    "keep_labels",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Keep every snapshot carrying this label (repeatable).",
)
@click.option("--clear", is_flag=True, help="Remove WSID's own policy: the config's default applies.")
@output_options
@click.pass_context
def retention_set(
    ctx: click.Context, wsid: str, keep_labels: tuple[str, ...], clear: bool, as_json: bool, output: str, **counts: Any
) -> None:
    """Replace WSID's own policy with the rules given (those not given are off), or --clear it."""
    rules: dict[str, Any] = {name: value for name, value in counts.items() if value is not None}
    if keep_labels:
        rules["keep_labels"] = list(keep_labels)
    if clear == bool(rules):
        raise click.UsageError("give the rules to keep by (--keep-…), or --clear, not both")
    show_retention(client(ctx).set_retention(wsid, rules), as_json, output)


@retention.command("plan")
@click.argument("wsid")
@output_options
@click.pass_context
def retention_plan(ctx: click.Context, wsid: str, as_json: bool, output: str) -> None:
    """Preview retention on WSID: every snapshot, newest first, kept (with each rule keeping it) or dropped.
    Changes nothing; the periodic job would drop the ``drop`` rows."""
    plan = client(ctx).plan_retention(wsid)
    if wants_json(as_json, output):
        emit_json(to_json(plan))
        return
    snapshots = {snapshot.snapshot_id: to_json(snapshot) for snapshot in client(ctx).iter_snapshots(wsid)}
    emit_table(plan_rows(plan, snapshots), PLAN_COLUMNS)
    click.echo(f"keep {len(plan.keep)}, drop {len(plan.drop)}", err=True)


def plan_rows(plan: RetentionPlan, snapshots: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's keep and drop entries as one table, newest first (by ``created_at``, then id, as the plan
    orders them); a snapshot dropped since the plan was read shows no time and comes last."""
    entries: list[tuple[dict[str, Any], str, str | None]] = [
        (item, "keep", "; ".join(item["reasons"])) for item in plan.keep
    ]
    entries += [(item, "drop", None) for item in plan.drop]
    rows = [
        {
            **snapshot_row(snapshots.get(item["snapshot_id"], {})),
            "snapshot_id": item["snapshot_id"],
            "action": action,
            "reasons": reasons,
        }
        for item, action, reasons in entries
    ]
    return sorted(rows, key=lambda row: (_instant(row.get("created_at")), row["snapshot_id"]), reverse=True)


def _instant(created_at: str | None) -> datetime:
    return datetime.min.replace(tzinfo=UTC) if created_at is None else datetime.fromisoformat(created_at)


# --- task ----------------------------------------------------------------------------------------


@cli.group()
def task() -> None:
    """Inspect and follow tasks."""


@task.command("submit")
@click.argument("op")
@click.option("--wsid", required=True, help="The workspace to run the task on.")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A param of OP (repeatable). VALUE is text for a param the op types as a string, JSON otherwise "
    '(--param copies=2, --param \'paths=["a","b"]\').',
)
@write_options
@click.pass_context
def task_submit(
    ctx: click.Context,
    op: str,
    wsid: str,
    params: tuple[str, ...],
    wait: bool,
    idempotency_key: str | None,
    as_json: bool,
    output: str,
) -> None:
    """Queue a task of any loaded OP (``wvsctl op list`` shows them), a plugin's included."""
    schemas = {item.name: item.params_schema for item in client(ctx).list_ops()}
    if op not in schemas:
        raise click.BadParameter(f"no loaded op {op!r}; the loaded ones: {', '.join(sorted(schemas))}", param_hint="OP")
    call = calls.submit(wsid, op, parse_params(params, schemas[op]), idempotency_key)
    accepted(ctx, client(ctx).send(call), wait, as_json, output)


def parse_params(pairs: tuple[str, ...], schema: dict[str, Any]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as params: VALUE as given when the op's JSON Schema for NAME accepts a string,
    else parsed as JSON (the API names a value that does not fit)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        if _accepts_string(schema.get("properties", {}).get(name, {})):
            params[name] = value
            continue
        try:
            params[name] = json.loads(value, parse_constant=_no_constant)
        except RecursionError:
            raise click.BadParameter(f"{name}: the JSON nests too deep", param_hint="--param") from None
        except ValueError:
            params[name] = value
        if isinstance(params[name], float) and not math.isfinite(params[name]):
            raise click.BadParameter(f"{name}: {value!r} is not a finite number", param_hint="--param")
    return params


def _no_constant(constant: str) -> Any:
    """JSON has no NaN or Infinity (RFC 8259 §6), though Python's parser accepts them."""
    raise click.BadParameter(f"{constant} is not a JSON value", param_hint="--param")


def _accepts_string(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" or any(_accepts_string(option) for option in schema.get("anyOf", ()))


@task.command("get")
@click.argument("task_id")
@output_options
@click.pass_context
def task_get(ctx: click.Context, task_id: str, as_json: bool, output: str) -> None:
    """Show task TASK_ID."""
    show(to_json(client(ctx).get_task(task_id)), TASK_FIELDS, as_json, output)


@task.command("list")
@click.option("--wsid", help="Only tasks of this workspace.")
@click.option("--status", help="Only tasks in this status.")
@click.option("--op", help="Only tasks of this op.")
@click.option("--limit", type=int, help="Page size (1-100).")
@click.option("--cursor", help="Continue after a previous page.")
@output_options
@click.pass_context
def task_list(
    ctx: click.Context,
    wsid: str | None,
    status: str | None,
    op: str | None,
    limit: int | None,
    cursor: str | None,
    as_json: bool,
    output: str,
) -> None:
    """List tasks, newest first."""
    show_page(client(ctx).list_tasks(wsid, status, op, cursor, limit), as_json, output, TASK_COLUMNS)


@task.command("watch")
@click.argument("task_id")
@output_options
@click.pass_context
def task_watch(ctx: click.Context, task_id: str, as_json: bool, output: str) -> None:
    """Follow task TASK_ID until it ends; exits non-zero unless it SUCCEEDED."""
    final = follow(client(ctx), task_id, quiet=wants_json(as_json, output))
    show(to_json(final), TASK_FIELDS, as_json, output)
    succeeded(final)


@task.command("cancel")
@click.argument("task_id")
@output_options
@click.pass_context
def task_cancel(ctx: click.Context, task_id: str, as_json: bool, output: str) -> None:
    """Cancel TASK_ID: a PENDING task at once, a RUNNING one at its next safe point."""
    answer = client(ctx).cancel_task(task_id)
    show(to_json(answer), ("task_id", "status", "cancel_requested"), as_json, output)
    if answer.status == "RUNNING":
        click.echo(f"follow it with: wvsctl task watch {task_id}")


# --- op ------------------------------------------------------------------------------------------


@cli.group()
def op() -> None:
    """The ops this service runs (its plugins' included)."""


@op.command("list")
@output_options
@click.pass_context
def op_list(ctx: click.Context, as_json: bool, output: str) -> None:
    """List the loaded ops with their params (JSON Schema with --json)."""
    ops = client(ctx).list_ops()
    if wants_json(as_json, output):
        emit_json({"items": to_json(ops)})
        return
    rows = []
    for item in ops:
        first, *more = textwrap.wrap(plain_text(item.description), OP_DESCRIPTION_WIDTH) or ["-"]
        quiesces = "yes" if item.quiesces else "no"
        rows.append({"name": item.name, "params": _param_names(item.params_schema), "quiesces": quiesces})
        rows[-1]["description"] = first
        rows += [{"name": "", "params": "", "quiesces": "", "description": line} for line in more]
    emit_table(rows, ("name", "params", "quiesces", "description"))


def plain_text(docstring_text: str) -> str:
    """A docstring's paragraph as plain text: RST's ````literal```` and Markdown's ```code``` lose their backticks,
    lines join into one."""
    return " ".join(
        re.sub(r"``(.+?)``|`(.+?)`", lambda found: found.group(1) or found.group(2), docstring_text).split()
    )


def _param_names(schema: dict[str, Any]) -> str:
    """The params a request may give: ``name`` required, ``[name]`` optional, ``[name=default]`` with its default."""
    required = set(schema.get("required", ()))
    names = []
    for name, field in schema.get("properties", {}).items():
        if field.get("readOnly"):
            continue
        if name in required:
            names.append(name)
        elif "default" in field and field["default"] is not None:
            default = field["default"]
            names.append(f"[{name}={default if isinstance(default, str) else json.dumps(default)}]")
        else:
            names.append(f"[{name}]")
    return " ".join(names) or "-"


# --- audit and events ----------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """Who changed what in a workspace."""


@audit.command("list")
@click.argument("wsid")
@click.option("--limit", type=int, help="Page size (1-100).")
@click.option("--cursor", help="Continue after a previous page.")
@output_options
@click.pass_context
def audit_list(
    ctx: click.Context, wsid: str, limit: int | None, cursor: str | None, as_json: bool, output: str
) -> None:
    """List the audit trail of WSID, newest first."""
    show_page(client(ctx).list_audit(wsid, cursor, limit), as_json, output, AUDIT_COLUMNS, _readable_actor)


def _readable_actor(item: dict[str, Any]) -> dict[str, Any]:
    """An audit row with its actor as a table shows it: ``api:ci-bot`` (its type, then its subject), ``retention``."""
    actor = item.get("actor")
    if isinstance(actor, dict) and "type" in actor:
        item = {**item, "actor": f"{actor['type']}:{actor['subject']}" if actor.get("subject") else actor["type"]}
    return item


@cli.group()
def events() -> None:
    """The service's events (SPEC §14), as webhooks receive them."""


@events.command("tail")
@click.option("--wsid", help="Only events of this workspace.")
@click.option(
    "--after", type=click.IntRange(min=0), default=0, help="Start after this event_id  [default: 0, the oldest]"
)
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="TYPE",
    help="Only events of this type (task.failed) or family (task); repeatable. Filtered by wvsctl.",
)
@click.option(
    "--follow/--no-follow", default=True, help="Keep waiting for new events (Ctrl-C stops)  [default: follow]"
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def events_tail(
    ctx: click.Context, wsid: str | None, after: int, types: tuple[str, ...], follow: bool, as_json: bool
) -> None:
    """Print events oldest first, then (with --follow) each new one as it is recorded."""
    events = client(ctx).events(wsid, after or None, follow=follow, poll_interval=EVENT_POLL_INTERVAL)
    try:
        headed = False
        for event in events:
            if types and not any(event.type == kind or event.type.startswith(f"{kind}.") for kind in types):
                continue
            record = to_json(event)
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
                continue
            if not headed:  # once, above the first event shown
                headed = True
                click.echo(_event_line({column: column.upper() for column in EVENT_COLUMNS}))
            click.echo(_event_line({column: cell(record.get(column)) for column in EVENT_COLUMNS}))
    except KeyboardInterrupt:
        pass


def _event_line(cells: dict[str, str]) -> str:
    return "  ".join(cells[column].ljust(width) for column, width in EVENT_COLUMNS.items()).rstrip()


cli.add_command(obs)


def main() -> None:
    """Entry point: the built-in commands plus those plugins add."""
    try:
        make_plugin_manager().hook.wvs_register_ctl_commands(cli=cli)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    cli(prog_name="wvsctl")
