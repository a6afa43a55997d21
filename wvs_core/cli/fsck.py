"""Running ``wvs fsck`` and printing its report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import attrs
import click
import sqlalchemy.exc

from wvs_core.cli.discovery import running_up
from wvs_core.cli.output import emit_table
from wvs_core.config import Config, setting
from wvs_core.db.consistency import ConsistencyStore
from wvs_core.db.engine import DSN, create_engine, describe_connect_error
from wvs_core.errors import StartupError
from wvs_core.fsck import Fsck, Report
from wvs_core.ids import is_wsid
from wvs_core.layout_migration import LayoutMigration
from wvs_core.plugins import PluginRegistry


def config_of_running_up(config: Config, data_dir: Path) -> Config:
    """``config`` with the database, mount path and storage backend of the ``wvs up`` running on ``data_dir``
    (its state file, ``wvs_core.cli.discovery``), saying so on stderr; for a config that names no database.
    Raises StartupError naming ``database.dsn`` when no ``wvs up`` runs there."""
    state = running_up(data_dir)
    if state is None:
        raise StartupError(
            f"{DSN} is not set and no `wvs up` runs on {data_dir} (--data-dir, WVS_DATA_DIR): set it and "
            f"{setting('executor.mount_path')}, or start `wvs up`"
        )
    click.echo(
        f"checking the `wvs up` on {state.data_dir} (pid {state.pid}): database {state.dsn}, "
        f"mount {state.mount_path} (storage {state.storage})",
        err=True,
    )
    return attrs.evolve(
        config,
        database=attrs.evolve(config.database, dsn=state.dsn),
        executor=attrs.evolve(config.executor, mount_path=state.mount_path),
        plugins=attrs.evolve(config.plugins, storage=state.storage),
    )


def run_fsck(config: Config, wsid: str | None, fix: bool, prune: bool, migrate_layout: bool = False) -> Report:
    """Check with the configured database, mount, storage and quiesce plugins; with ``migrate_layout``,
    migrate the volume first (its findings lead the report). Raises StartupError (a ConfigError among them)
    naming the setting when the database does not answer or no volume is mounted at the mount path."""
    if wsid is not None and not is_wsid(wsid):
        raise click.BadParameter(f"{wsid!r} is not a workspace id", param_hint="WSID")
    registry = PluginRegistry.load(config.plugins)
    plugins = config.plugins
    storage = registry.storage_backends[plugins.storage](plugins.settings_for(plugins.storage))
    quiesce = registry.quiesce_protocols[plugins.quiesce](plugins.settings_for(plugins.quiesce))
    engine = create_engine(config.database)

    async def main() -> Report:
        try:
            store, mount = ConsistencyStore(engine), Path(config.executor.mount_path)
            migrated = await LayoutMigration(store, mount, storage).run() if migrate_layout else []
            fsck = Fsck(store, mount, storage, quiesce, registry.live_trees, registry.kept_trees)
            report = await fsck.run(wsid, fix=fix, prune=prune)
            return attrs.evolve(report, findings=migrated + report.findings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (OSError, sqlalchemy.exc.SQLAlchemyError) as error:
        raise StartupError(f"cannot reach the database at {DSN}: {describe_connect_error(error)}") from None


def emit_report(report: Report, as_json: bool) -> None:
    """A table (or JSON) of the findings and a one-line verdict."""
    if as_json:
        data = {
            "clean": report.clean,
            "checked": report.checked,
            "skipped": report.skipped,
            "findings": [attrs.asdict(finding) for finding in report.findings],
        }
        click.echo(json.dumps(data, indent=2))
        return
    if report.findings:
        emit_table([attrs.asdict(f) for f in report.findings], ("wsid", "kind", "repair", "fixed", "detail"))
    unfixed = sum(not finding.fixed for finding in report.findings)
    skipped = f", {len(report.skipped)} skipped while busy" if report.skipped else ""
    verdict = "clean" if report.clean else f"{unfixed} inconsistenc{'y' if unfixed == 1 else 'ies'} left"
    click.echo(f"{len(report.checked)} workspace(s) checked{skipped}: {verdict}")
