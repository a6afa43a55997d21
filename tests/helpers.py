"""Test helpers: waiting on tasks, creating workspaces, comparing trees attribute by attribute."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wvs_controlfile import ControlFileQuiesce
from wvs_core.cli.wvs import cli as wvs_cli
from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db.consistency import ConsistencyStore
from wvs_core.db.engine import create_engine
from wvs_core.fsck import Fsck
from wvs_core.ids import uuid7
from wvs_core.layout import WorkspaceLayout
from wvs_core.plugins import PluginRegistry
from wvs_juicefs.backend import JuiceFSBackend

TERMINAL = {"SUCCEEDED", "DEAD", "CANCELED"}

Head = tuple[str | None, datetime | None, datetime | None]
"""A workspace's head: its oldest unfinished task's id and created_at, and when it may run (None: it runs)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def key() -> dict[str, str]:
    """A fresh Idempotency-Key header."""
    return {"Idempotency-Key": uuid7()}


def new_token(tokens_file: Path, subject: str, role: str, owners: str = "") -> str:
    """Make a token with ``wvs token new`` (``owners``: comma-separated), append its table to
    ``tokens_file``, return the token."""
    made = CliRunner().invoke(wvs_cli, ["token", "new", "--subject", subject, "--role", role, "--owners", owners])
    assert made.exit_code == 0, made.output
    with tokens_file.open("a") as handle:
        handle.write(made.stdout)
    return made.stderr.rsplit(": ", 1)[1].strip()


def bearer(token: str, **extra: str) -> dict[str, str]:
    """An Authorization header for ``token``, plus ``extra`` headers."""
    return {"Authorization": f"Bearer {token}", **extra}


async def wait_task(
    client: httpx.AsyncClient, task_id: str, until: set[str] = TERMINAL, timeout: float = 30
) -> dict[str, Any]:
    """Poll a task until its status is in ``until``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task = response.json()
        if task["status"] in until:
            return task
        assert time.monotonic() < deadline, f"task {task_id} still {task['status']} after {timeout}s: {task}"
        await asyncio.sleep(0.05)


async def create_workspace(client: httpx.AsyncClient, wsid: str, owner: str = "tests") -> dict[str, Any]:
    """Create a workspace and wait until it is ACTIVE; returns the workspace."""
    response = await client.post("/v1/workspaces", json={"wsid": wsid, "owner": owner}, headers=key())
    assert response.status_code == 202, response.text
    task = await wait_task(client, response.json()["init_task_id"])
    assert task["status"] == "SUCCEEDED", task
    workspace = (await client.get(f"/v1/workspaces/{wsid}")).json()
    assert workspace["state"] == "ACTIVE"
    return dict(workspace)


def tree_signature(root: Path, ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``root`` (not following links) → (kind, mode, uid, gid, mtime_ns, content)."""
    entries: dict[str, tuple[Any, ...]] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(directory) / name
            relative = str(path.relative_to(root))
            if relative in ignore or any(relative.startswith(prefix + "/") for prefix in ignore):
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                content: Any = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
            else:
                content = None
            entries[relative] = (
                stat.S_IFMT(info.st_mode),
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
                info.st_mtime_ns,
                content,
            )
    return entries


def populate_tree(root: Path) -> None:
    """Write a tree with everything a snapshot must keep: modes, owners, mtimes, links, odd names."""
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "empty dir" / "nested empty").mkdir(parents=True)
    (root / "src" / "pkg" / "main.py").write_text("print('hello')\n")
    (root / "notes with spaces.txt").write_text("spaces in the name\n")
    (root / "ünïcödé-名前.md").write_text("unicode name\n")
    (root / "big.bin").write_bytes(os.urandom(256 * 1024))
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o750)
    secret = root / "secret.txt"
    secret.write_text("only the owner\n")
    secret.chmod(0o600)
    os.chown(root / "src", 1234, 2345)
    os.chown(root / "src" / "pkg" / "main.py", 1234, 2345)
    os.symlink("src/pkg/main.py", root / "link-to-main")
    os.symlink("/nonexistent/target", root / "dangling-link")
    os.symlink("src", root / "link-to-dir")
    old = 1_500_000_000
    os.utime(root / "notes with spaces.txt", ns=(old * 10**9, old * 10**9))
    os.utime(root / "link-to-main", ns=(old * 10**9, (old + 7) * 10**9), follow_symlinks=False)


def default_fsck(engine: AsyncEngine, mount: Path) -> Fsck:
    """``wvs fsck`` as the CLI builds it with the default plugins (JuiceFS, control-json, the built-in ops)."""
    registry = PluginRegistry.load(PluginsConfig())
    return Fsck(
        ConsistencyStore(engine),
        mount,
        JuiceFSBackend({}),
        ControlFileQuiesce({}),
        registry.live_trees,
        registry.kept_trees,
    )


async def assert_fsck_clean(database: str, mount: Path) -> None:
    """``wvs fsck`` finds nothing to repair (run through its library entry point)."""
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
    try:
        report = await default_fsck(engine, mount).run()
    finally:
        await engine.dispose()
    assert report.findings == [] and report.skipped == [], report


def snapshots_dir(mount: Path, wsid: str) -> Path:
    """Where a workspace's snapshot trees live: ``<mount>/.wvs/snapshots/<wsid>`` (WVS's area)."""
    return WorkspaceLayout(mount, wsid).snapshots_dir


def snapshot_is_complete(mount: Path, wsid: str, snapshot_id: str) -> bool:
    """Both the tree and its metadata file (the completeness marker) are in WVS's area."""
    layout = WorkspaceLayout(mount, wsid)
    return layout.snapshot(snapshot_id).is_dir() and layout.snapshot_metadata(snapshot_id).is_file()


def in_flight(mount: Path, wsid: str) -> list[Path]:
    """Trees of clones in flight (``<mount>/.wvs/tmp/<wsid>/*``): none once an op ended or was recovered."""
    tmp = WorkspaceLayout(mount, wsid).tmp_dir
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


async def workspace_heads(conn: AsyncConnection) -> tuple[dict[str, Head], dict[str, Head]]:
    """Every workspace's head as its row stores it, and as computed here from scratch from its tasks."""
    stored = {
        row.wsid: (row.head_task_id, row.head_created_at, row.head_run_at)
        for row in await conn.execute(
            sa.text("SELECT wsid, head_task_id, head_created_at, head_run_at FROM wvs.workspaces")
        )
    }
    computed: dict[str, Head] = dict.fromkeys(stored, (None, None, None))
    tasks = await conn.execute(
        sa.text("SELECT wsid, task_id, status, created_at, next_run_at FROM wvs.tasks ORDER BY created_at, task_id")
    )
    for task in tasks:
        if computed[task.wsid][0] is None and task.status in ("PENDING", "RUNNING", "FAILED"):
            run_at = None if task.status == "RUNNING" else task.next_run_at
            computed[task.wsid] = (task.task_id, task.created_at, run_at)
    return stored, computed
