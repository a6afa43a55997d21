"""``wvs``: run the planes (``up``, ``api``, ``worker``, ``executor``), migrate, list plugins."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from wvs_core.auth import Principal, Role, new_token, token_digest
from wvs_core.cli.common import CannotStart, config_option, load_or_exit, run_service
from wvs_core.cli.discovery import default_data_dir
from wvs_core.cli.fsck import emit_report
from wvs_core.cli.output import emit_table
from wvs_core.cli.up import up
from wvs_core.errors import StartupError
from wvs_core.logs import setup_logging
from wvs_core.plugins import PluginRegistry, make_plugin_manager
from wvs_core.runtime import Service


def _plane(config_path: Path | None, plane: str, schedulers: int = 1) -> None:
    config = load_or_exit(config_path)
    setup_logging(config.log_level, plane)
    run_service(Service(config, planes=(plane,), schedulers=schedulers))


class _Commands(click.Group):
    """``wvs``'s commands, its plugins' too: a StartupError escaping one (a setting missing or wrong, a
    database that does not answer, an address taken, a mount not there) is one line naming the setting and
    exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, turning a StartupError into CannotStart."""
        try:
            return super().invoke(ctx)
        except StartupError as error:
            raise CannotStart(str(error)) from None


@click.group(cls=_Commands)
def cli() -> None:
    """WVS, the Workspace Versioning Service."""


@cli.command()
@config_option
def api(config_path: Path | None) -> None:
    """Run the control plane (REST API)."""
    _plane(config_path, "api")


@cli.command()
@config_option
@click.option(
    "--schedulers",
    default=1,
    type=click.IntRange(min=1),
    show_default=True,
    help="Scheduler instances in this process.",
)
def worker(config_path: Path | None, schedulers: int) -> None:
    """Run the scheduling plane."""
    _plane(config_path, "worker", schedulers)


@cli.command()
@config_option
def executor(config_path: Path | None) -> None:
    """Run the execution plane (gRPC)."""
    _plane(config_path, "executor")


@cli.command()
@config_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--downgrade", is_flag=True, help="Migrate down to --revision instead of up.")
def migrate(config_path: Path | None, revision: str, downgrade: bool) -> None:
    """Apply the database migrations (the only way the schema changes)."""
    from wvs_core import migrate as migrations
    from wvs_core.db.engine import connect_or_refuse

    config = load_or_exit(config_path)

    async def reach_database() -> None:  # a clear error first, not alembic's traceback
        await (await connect_or_refuse(config.database.dsn)).close()

    asyncio.run(reach_database())
    if downgrade:
        migrations.downgrade(config.database.dsn, revision)
    else:
        migrations.upgrade(config.database.dsn, revision)
    click.echo(f"database at revision {revision}")


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(config_path: Path | None, as_json: bool) -> None:
    """List the loaded plugins, where they come from and what they provide: storage backends, quiesce
    protocols, queues, ops, notifiers, the volume `wvs up` mounts, and the commands they add to wvs and wvsctl."""
    from wvs_core.cli.plugin_commands import plugin_commands
    from wvs_core.cli.wvsctl import cli as wvsctl_cli

    config = load_or_exit(config_path)
    registry = PluginRegistry.load(config.plugins)
    commands = plugin_commands(registry.pm, cli, wvsctl_cli)
    rows = [row | {"provides": row["provides"] + commands.get(row["name"], [])} for row in registry.describe()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [
        row | {"distribution": row["distribution"] or "not packaged", "provides": ", ".join(row["provides"]) or "-"}
        for row in rows
    ]
    emit_table(table, ("name", "module", "distribution", "provides", "file"))


@cli.command()
@config_option
@click.argument("wsid", required=False)
@click.option("--fix", is_flag=True, help="Repair what is safe: leftovers, half-made trees, database drift.")
@click.option(
    "--prune",
    is_flag=True,
    help="With --fix: also delete trees that may hold data (unknown snapshots, live trees that never became current).",
)
@click.option(
    "--migrate-layout",
    is_flag=True,
    help="First move a volume of the earlier layout (snapshots inside agent views) to the current one; "
    "idempotent. Stop the executors first.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_data_dir,
    show_default="WVS_DATA_DIR, else the user's data directory",
    help="Without database.dsn: check the `wvs up` running on this data directory (its database and mount).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
def fsck(
    config_path: Path | None,
    wsid: str | None,
    fix: bool,
    prune: bool,
    migrate_layout: bool,
    data_dir: Path,
    as_json: bool,
) -> None:
    """Compare the database with the filesystem for WSID (or every workspace); exit 1 when inconsistent, 2 when
    it cannot start. Without database.dsn it checks the `wvs up` running on --data-dir."""
    from wvs_core.cli.fsck import config_of_running_up, run_fsck

    config = load_or_exit(config_path)
    if not config.database.dsn:
        config = config_of_running_up(config, data_dir.resolve())
    setup_logging("warning", "fsck")
    if migrate_layout and wsid is not None:
        raise click.UsageError("--migrate-layout moves the whole volume: give no WSID")
    report = run_fsck(config, wsid, fix, fix and prune, migrate_layout)
    emit_report(report, as_json)
    sys.exit(0 if report.clean else 1)


@cli.group()
def token() -> None:
    """API bearer tokens (the file named by ``api.tokens_file``)."""


@token.command("new")
@click.option("--subject", required=True, help="Who holds the token; recorded as the actor of its writes.")
@click.option("--role", type=click.Choice([role.value for role in Role]), default=Role.WRITE.value, show_default=True)
@click.option("--owners", default="", help="Comma-separated owners it also acts for (read and write roles).")
def new_token_command(subject: str, role: str, owners: str) -> None:
    """Make a token: the token itself goes to stderr (shown once, give it to the client as WVS_TOKEN), its
    ``[[tokens]]`` table to stdout, e.g. ``wvs token new --subject ci-bot >> /etc/wvs/tokens.toml``."""
    secret = new_token()
    acts_for = tuple(owner.strip() for owner in owners.split(",") if owner.strip())
    try:
        principal = Principal(subject=subject, role=Role(role), sha256=token_digest(secret), owners=acts_for)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    click.echo(f"token for {principal.subject}: {secret}", err=True)
    table: dict[str, object] = {"subject": principal.subject, "role": principal.role.value}
    if principal.owners:
        table["owners"] = list(principal.owners)
    lines = [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in table.items()]  # valid TOML too
    click.echo("\n[[tokens]]\n" + "\n".join(lines) + f'\nsha256 = "{principal.sha256}"')


def main() -> None:
    """Entry point: the built-in commands plus those plugins add."""
    cli.add_command(up)
    try:
        make_plugin_manager().hook.wvs_register_commands(cli=cli)
    except StartupError as error:
        CannotStart(str(error)).show()
        sys.exit(CannotStart.exit_code)
    cli()
