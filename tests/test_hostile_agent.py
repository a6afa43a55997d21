"""Hostile agents (SPEC §1, §6, §13): an agent is root inside its own view ``<mount>/<wsid>/`` and plants
links, FIFOs, devices, huge or malformed files and races there, or attacks through the API. Whatever it
does, WVS must read, write, delete and block on nothing outside that view.

Every attack checks four things:

1. a **decoy** outside the volume (and one on the volume, outside every view) is byte-for-byte unchanged;
2. the **victim** workspace's view and snapshots are byte-for-byte unchanged;
3. the attacker's own task ends cleanly: DEAD with ``WORKSPACE_TAMPERED`` (plus a ``workspace.tampered``
   audit row) when its view is not as WVS made it, DEAD with ``QUIESCE_TIMEOUT`` for a control file that is
   no valid answer (fail-closed: nothing cloned), or SUCCEEDED at its first attempt when the attack is
   harmless;
4. nobody else is held up: a snapshot of the victim started while the attack is in progress succeeds
   within ``PROMPT`` seconds.

One service (with bearer tokens), one victim and the decoys are shared by the module (``arena``); every
test takes fresh attacker workspaces from a pool. Tasks get one attempt (``max_attempts = 1``), so a
failure is final at once, and the freeze timeout is 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import StartService, fresh_database, make_config
from tests.helpers import (
    TERMINAL,
    bearer,
    create_workspace,
    default_fsck,
    in_flight,
    key,
    new_token,
    populate_tree,
    snapshots_dir,
    tree_signature,
    wait_task,
)
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvs import cli as wvs_cli
from wvs_core.config import DatabaseConfig, config_from_dict
from wvs_core.db.engine import create_engine
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.ids import uuid7
from wvs_core.plugins import PluginRegistry
from wvs_core.runtime import Service
from wvs_executor.runner import OpRunner
from wvs_juicefs.volume import JuiceFSVolume

PROMPT = 8.0  # a victim snapshot started during an attack ends within this many seconds
QUIESCE_TIMEOUT = 1.0
TAMPERED = "WORKSPACE_TAMPERED"
VICTIM = "victim"
ATTACKER_OWNER = "mallory"
VICTIM_OWNER = "alice"
POOL_BATCH = 6
MiB = 1024 * 1024
AUDIT_TAMPERED = "workspace.tampered"

_LIBC = ctypes.CDLL(None, use_errno=True)
_RENAME_EXCHANGE = 2


# --- filesystem tools of the attacker --------------------------------------------------------------


def exchange(dir_fd: int, first: str, second: str) -> None:
    """``renameat2(RENAME_EXCHANGE)``: swap two names atomically (JuiceFS supports it)."""
    if _LIBC.renameat2(dir_fd, os.fsencode(first), dir_fd, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), first)


def remove_any(path: Path) -> None:
    """Remove whatever ``path`` is (a directory tree, a file, a link, a node); missing is fine."""
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def link(path: Path, target: str | os.PathLike[str]) -> None:
    """Make ``path`` a symlink to ``target``, atomically when it is a file or a link now."""
    temporary = path.with_name(f".plant-{uuid7()}")
    os.symlink(target, temporary)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(temporary, path)


def plant(path: Path, kind: str, data: bytes = b"") -> None:
    """Replace ``path`` with a node of ``kind``: file, dir, fifo, chardev, blockdev, socket or missing."""
    remove_any(path)
    if kind == "file":
        path.write_bytes(data)
    elif kind == "dir":
        path.mkdir()
        (path / "inside.txt").write_text("planted")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "chardev":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # what /dev/zero is
    elif kind == "blockdev":
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 0))  # a loop device
    elif kind == "socket":
        os.mknod(path, stat.S_IFSOCK | 0o644)
    else:
        assert kind == "missing", kind


def signature(path: Path) -> tuple[Any, ...]:
    """The root's own kind, mode, owner and mtime, plus ``tree_signature`` of everything below it."""
    info = path.lstat()
    head = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_mtime_ns)
    return head, tree_signature(path)


def make_decoy(root: Path) -> Path:
    """A directory of known files an attacker points at: WVS must never read, write or delete it."""
    root.mkdir()
    (root / "secret.txt").write_text("DECOY: WVS must never read or write this\n")
    (root / "control.json").write_text(json.dumps({"state": "FROZEN", "timestamp": "x", "task_id": "x"}))
    (root / "control.lock").write_text("")
    (root / "snapshot.json").write_text('{"snapshot_id": "decoy"}')
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "data.bin").write_bytes(bytes(range(256)) * 64)
    os.symlink("secret.txt", root / "link-to-secret")
    (root / "sub" / "deeper" / "data.bin").chmod(0o640)
    return root


def tree_contains(root: Path, needle: bytes) -> list[str]:
    """Files below ``root`` (not following links) whose content holds ``needle``."""
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
    return found


# --- the arena --------------------------------------------------------------------------------------


class Attacker:
    """One hostile workspace. ``stack`` holds what the test started for it (responders, holders)."""

    def __init__(self, arena: Arena, wsid: str, live_id: str) -> None:
        self.arena = arena
        self.wsid = wsid
        self.live_id = live_id
        self.stack = contextlib.ExitStack()
        self.good_snapshots: list[str] = []

    @property
    def root(self) -> Path:
        return self.arena.mount / self.wsid

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def live(self) -> Path:
        return self.root / "live"

    @property
    def tree(self) -> Path:
        """Its live tree, by the real path (not through ``current``)."""
        return self.live / self.live_id

    @property
    def meta(self) -> Path:
        return self.root / ".wvs"

    @property
    def control(self) -> Path:
        return self.meta / "control.json"

    @property
    def snapshots(self) -> Path:
        return snapshots_dir(self.arena.mount, self.wsid)

    def respond(self) -> None:
        """Run a well-behaved quiesce responder for the rest of the test."""
        self.stack.enter_context(QuiesceResponder(self.root).running_in_thread())

    async def snapshot(self) -> str:
        """Submit a snapshot; its task id."""
        response = await self.arena.client.post(f"/v1/workspaces/{self.wsid}/snapshots", json={}, headers=key())
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    async def rollback(self, snapshot_id: str) -> str:
        """Submit a rollback to ``snapshot_id``; its task id."""
        response = await self.arena.client.post(
            f"/v1/workspaces/{self.wsid}/current:set", json={"snapshot_id": snapshot_id}, headers=key()
        )
        assert response.status_code == 202, response.text
        return str(response.json()["task_id"])

    async def take_snapshot(self) -> str:
        """A snapshot that must succeed (a responder must be running); its id."""
        task = await wait_task(self.arena.client, await self.snapshot())
        assert task["status"] == "SUCCEEDED", task
        self.good_snapshots.append(task["params"]["snapshot_id"])
        return str(task["params"]["snapshot_id"])


class Arena:
    """The shared service, the victim, the decoys and the pool of attacker workspaces."""

    def __init__(self, client: httpx.AsyncClient, mount: Path, dsn: str, decoy: Path, tokens: dict[str, str]) -> None:
        self.client = client
        self.mount = mount
        self.dsn = dsn
        self.decoy = decoy
        self.volume_decoy = make_decoy(mount / "_decoy")  # on the volume, outside every view (not a wsid)
        self.tokens = tokens
        self.counter = itertools.count()
        self.pool: list[str] = []
        self.victim_snapshot_ids: list[str] = []
        self.kept: dict[str, set[str]] = {}  # wsid → snapshots its rollbacks made of the trees they replaced
        self.victim_extra: set[str] = set()  # victim snapshots the checks took
        self.victim_secret = f"VICTIM-SECRET-{uuid7()}".encode()
        self.baseline: dict[str, Any] = {}
        self.decoys: dict[Path, Any] = {}
        self.attackers: list[Attacker] = []
        self.victim_live_id = ""
        self.stack = contextlib.ExitStack()  # the victim's responder

    # --- set-up ---------------------------------------------------------------------------------

    async def set_up(self) -> None:
        """Create the victim with a populated tree and a snapshot; note what must never change."""
        workspace = await create_workspace(self.client, VICTIM, owner=VICTIM_OWNER)
        self.victim_live_id = Path(workspace["current_path"]).name
        self.stack.enter_context(QuiesceResponder(self.victim_root).running_in_thread())
        populate_tree(self.victim_tree)
        (self.victim_tree / "victim-only.txt").write_bytes(self.victim_secret)
        (self.victim_tree / "src" / "pkg" / "secret.py").write_bytes(b"KEY = '" + self.victim_secret + b"'\n")
        for _ in range(2):
            response = await self.client.post(f"/v1/workspaces/{VICTIM}/snapshots", json={}, headers=key())
            task = await wait_task(self.client, response.json()["task_id"])
            assert task["status"] == "SUCCEEDED", task
            self.victim_snapshot_ids.append(response.json()["snapshot_id"])
        self.baseline = self.victim_state()
        self.decoys = {path: signature(path) for path in (self.decoy, self.volume_decoy)}

    @property
    def victim_root(self) -> Path:
        return self.mount / VICTIM

    @property
    def victim_live(self) -> Path:
        return self.victim_root / "live"

    @property
    def victim_tree(self) -> Path:
        return self.victim_live / self.victim_live_id

    def victim_state(self) -> dict[str, Any]:
        """The victim's view (but its handshake file) and its snapshots, byte for byte."""
        snapshots = snapshots_dir(self.mount, VICTIM)
        names = sorted(n for n in os.listdir(snapshots) if n.removesuffix(".json") not in self.victim_extra)
        return {
            "view": tree_signature(self.victim_root, ignore=(".wvs",)),
            "snapshot names": names,
            "snapshots": {
                sid: (signature(snapshots / sid), (snapshots / f"{sid}.json").read_bytes())
                for sid in self.victim_snapshot_ids
            },
        }

    # --- attackers ------------------------------------------------------------------------------

    async def attacker(self, *, respond: bool = False, snapshot: bool = False) -> Attacker:
        """A fresh ACTIVE workspace of mallory's with a file in ``current``; with ``snapshot``, one good
        snapshot of it (``good_snapshots[0]``); with ``respond``, a quiesce responder running."""
        if not self.pool:
            wsids = [f"atk-{next(self.counter):03d}" for _ in range(POOL_BATCH)]
            await asyncio.gather(*(create_workspace(self.client, wsid, owner=ATTACKER_OWNER) for wsid in wsids))
            self.pool.extend(wsids)
        wsid = self.pool.pop(0)
        workspace = (await self.client.get(f"/v1/workspaces/{wsid}")).json()
        attacker = Attacker(self, wsid, Path(workspace["current_path"]).name)
        self.attackers.append(attacker)
        (attacker.current / "mine.txt").write_text(f"attacker {wsid}\n")
        (attacker.current / "dir").mkdir()
        (attacker.current / "dir" / "file.txt").write_text("attacker data\n")
        if respond:
            attacker.respond()
        if snapshot:
            with contextlib.nullcontext() if respond else QuiesceResponder(attacker.root).running_in_thread():
                await attacker.take_snapshot()
        return attacker

    # --- the four checks ------------------------------------------------------------------------

    async def victim_snapshot(self) -> None:
        """Snapshot the victim now: it must succeed within PROMPT and hold exactly the victim's tree."""
        started = time.monotonic()
        response = await self.client.post(f"/v1/workspaces/{VICTIM}/snapshots", json={}, headers=key())
        assert response.status_code == 202, response.text
        snapshot_id = response.json()["snapshot_id"]
        self.victim_extra.add(snapshot_id)
        task = await wait_task(self.client, response.json()["task_id"], timeout=PROMPT)
        elapsed = time.monotonic() - started
        assert task["status"] == "SUCCEEDED" and task["attempt"] == 1, task
        assert elapsed < PROMPT, f"the victim's snapshot took {elapsed:.1f}s during the attack"
        copy = snapshots_dir(self.mount, VICTIM) / snapshot_id
        assert await asyncio.to_thread(tree_signature, copy) == await asyncio.to_thread(
            tree_signature, self.victim_tree
        )

    async def during(self, *task_ids: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Once the attack's first task runs (or ended), snapshot the victim (check 4); then wait for the
        attack's tasks to end and return them."""
        await wait_task(self.client, task_ids[0], until={"RUNNING", *TERMINAL}, timeout=timeout)
        await self.victim_snapshot()
        tasks = [await wait_task(self.client, task_id, timeout=timeout) for task_id in task_ids]
        for task in tasks:
            if kept := (task["result"] or {}).get("kept_snapshot_id"):
                self.kept.setdefault(task["wsid"], set()).add(kept)
        handshake = await asyncio.to_thread((self.victim_root / ".wvs" / "control.json").read_text)
        assert not [task_id for task_id in task_ids if task_id in handshake], "WVS wrote into the victim's handshake"
        return tasks

    async def assert_untouched(self) -> None:
        """Checks 1 and 2: the decoys and the victim are exactly as they were."""
        for path, before in self.decoys.items():
            assert await asyncio.to_thread(signature, path) == before, f"the decoy {path} changed"
        assert await asyncio.to_thread(self.victim_state) == self.baseline, "the victim changed"

    async def audit_actions(self, wsid: str) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/workspaces/{wsid}/audit", params={"limit": 100})
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def assert_tampered(self, attacker: Attacker, *tasks: dict[str, Any]) -> None:
        """Check 3 for a view that is not as WVS made it: DEAD, WORKSPACE_TAMPERED, audited, nothing made."""
        for task in tasks:
            assert task["status"] == "DEAD", task
            assert task["error"]["reason"] == TAMPERED, task
        rows = await self.audit_actions(attacker.wsid)
        audited = {row["task_id"] for row in rows if row["action"] == AUDIT_TAMPERED}
        assert {task["task_id"] for task in tasks} <= audited, rows
        self.assert_nothing_made(attacker, *tasks)

    def assert_quiesce_timeout(self, attacker: Attacker, *tasks: dict[str, Any]) -> None:
        """Check 3 for a control file that is no answer: DEAD (one attempt), QUIESCE_TIMEOUT, nothing cloned."""
        for task in tasks:
            assert task["status"] == "DEAD", task
            assert task["error"]["reason"] == "QUIESCE_TIMEOUT", task
        self.assert_nothing_made(attacker, *tasks)

    def assert_nothing_made(self, attacker: Attacker, *tasks: dict[str, Any]) -> None:
        """Failed tasks left no snapshot, no live tree and no clone in flight."""
        names = set(os.listdir(attacker.snapshots))
        made = {*attacker.good_snapshots, *self.kept.get(attacker.wsid, ())}  # kept: by rollbacks that succeeded
        expected = made | {f"{sid}.json" for sid in made}
        assert names == expected, f"unexpected trees in {attacker.snapshots}: {names - expected}"
        assert in_flight(self.mount, attacker.wsid) == []
        for task in tasks:
            new_live = task["params"].get("new_live_id")
            if new_live and os.path.lexists(attacker.root / "live"):
                assert not os.path.lexists(attacker.root / "live" / new_live), task

    @staticmethod
    def assert_succeeded(*tasks: dict[str, Any]) -> None:
        """Check 3 for a harmless attack: SUCCEEDED at the first attempt (no executor error on the way)."""
        for task in tasks:
            assert task["status"] == "SUCCEEDED" and task["attempt"] == 1, task

    async def as_user(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """One request with ``who``'s token (an Idempotency-Key included)."""
        headers = bearer(self.tokens[who], **key())
        return await self.client.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
async def arena(
    postgres: EmbeddedPostgres, juicefs_volume: JuiceFSVolume, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Arena]:
    """The shared service (tokens on, 1 s freeze timeout, one attempt per task), victim and decoys."""
    base = tmp_path_factory.mktemp("hostile")
    mount = juicefs_volume.mount_path / f"hostile-{os.getpid()}"
    mount.mkdir()
    tokens_file = base / "tokens.toml"
    tokens = {
        "admin": new_token(tokens_file, "ops", "admin"),
        VICTIM_OWNER: new_token(tokens_file, VICTIM_OWNER, "write"),
        ATTACKER_OWNER: new_token(tokens_file, ATTACKER_OWNER, "write"),
    }
    with fresh_database(postgres) as dsn:
        config = make_config(
            dsn,
            mount,
            api={"tokens_file": str(tokens_file)},
            executor={"quiesce_timeout": f"{QUIESCE_TIMEOUT:g}s", "agent_owner": "1000:1000"},
            worker={"max_attempts": 1, "concurrency": 12},
        )
        service = Service(config, PluginRegistry.load(config.plugins), serve_metrics=False)
        await service.start()
        try:
            headers = bearer(tokens["admin"])
            # Idle connections expire here before the server's keep-alive (5 s) closes them: a request sent on
            # a connection the server is closing at that instant fails (ReadError), as with any HTTP client.
            limits = httpx.Limits(keepalive_expiry=1.0)
            async with httpx.AsyncClient(
                base_url=service.api_url or "", timeout=30, headers=headers, limits=limits
            ) as client:
                arena = Arena(client, mount, dsn, make_decoy(base / "decoy"), tokens)
                with arena.stack:
                    await arena.set_up()
                    yield arena
        finally:
            await service.stop()


@pytest.fixture
async def hostile(arena: Arena) -> AsyncIterator[Arena]:
    """The arena for one test; whatever the test started for its attackers is stopped afterwards."""
    started = len(arena.attackers)
    yield arena
    for attacker in arena.attackers[started:]:
        attacker.stack.close()


# --- `current`, `live` and `.wvs` not as WVS made them ----------------------------------------------

Plant = Callable[[Arena, Attacker], None]

CURRENT_ATTACKS: dict[str, Plant] = {
    "link-to-victim-tree-absolute": lambda a, k: link(k.current, a.victim_tree),
    "link-to-victim-tree-relative": lambda a, k: link(k.current, f"../{VICTIM}/live/{a.victim_live_id}"),
    "link-to-decoy": lambda a, k: link(k.current, a.decoy),
    "link-to-volume-decoy": lambda a, k: link(k.current, "../_decoy"),
    "link-to-root": lambda a, k: link(k.current, "/"),
    "real-directory": lambda a, k: plant(k.current, "dir"),
    "regular-file": lambda a, k: plant(k.current, "file", b"live/not-a-link"),
    "fifo": lambda a, k: plant(k.current, "fifo"),
    "missing": lambda a, k: plant(k.current, "missing"),
    "dotdot-out-of-live": lambda a, k: link(k.current, f"live/{k.live_id}/../../../{VICTIM}/live/{a.victim_live_id}"),
    "live-not-a-uuid": lambda a, k: (plant(k.live / "not-a-uuid", "dir"), link(k.current, "live/not-a-uuid")),
    "dangling": lambda a, k: link(k.current, f"live/{uuid7()}"),
    "trailing-slash": lambda a, k: link(k.current, f"live/{k.live_id}/"),
    "dot-prefix": lambda a, k: link(k.current, f"./live/{k.live_id}"),
    "double-slash": lambda a, k: link(k.current, f"live//{k.live_id}"),
    "own-tree-absolute": lambda a, k: link(k.current, k.tree),
    "link-loop": lambda a, k: link(k.current, "current"),
    "4KiB-target": lambda a, k: link(k.current, "live/" + "x/" * 2000 + k.live_id),
    "invalid-utf8-target": lambda a, k: link(k.current, os.fsdecode(b'live/\xff\xfe\n"}')),
}


def _live_links_to_victim_live(arena: Arena, attacker: Attacker) -> None:
    """``live`` → the victim's ``live``; ``current`` → ``live/<victim's live id>`` resolves into the victim."""
    attacker.live.rename(attacker.root / "live.real")
    link(attacker.live, arena.victim_live)
    link(attacker.current, f"live/{arena.victim_live_id}")


def _live_id_links_to(target: Callable[[Arena], Path]) -> Plant:
    def plant_link(arena: Arena, attacker: Attacker) -> None:
        attacker.tree.rename(attacker.live / "moved-away")
        link(attacker.tree, target(arena))

    return plant_link


def _live_is(kind: str) -> Plant:
    def plant_node(arena: Arena, attacker: Attacker) -> None:
        attacker.live.rename(attacker.root / "live.real")
        plant(attacker.live, kind)

    return plant_node


def _live_id_is_fifo(arena: Arena, attacker: Attacker) -> None:
    attacker.tree.rename(attacker.live / "moved-away")
    plant(attacker.tree, "fifo")


LIVE_ATTACKS: dict[str, Plant] = {
    "live-links-to-victim-live": _live_links_to_victim_live,
    "live-id-links-to-victim-tree": _live_id_links_to(lambda a: a.victim_tree),
    "live-id-links-to-decoy": _live_id_links_to(lambda a: a.decoy),
    "live-is-a-file": _live_is("file"),
    "live-missing": _live_is("missing"),
    "live-id-is-a-fifo": _live_id_is_fifo,
}


@pytest.mark.parametrize(
    "attack",
    [*CURRENT_ATTACKS, *LIVE_ATTACKS],
)
async def test_current_or_live_not_as_wvs_made_them(hostile: Arena, attack: str) -> None:
    """A snapshot and a rollback of a view whose ``current`` or ``live`` was replaced both die
    WORKSPACE_TAMPERED, audited, having cloned nothing and touched nothing outside the view."""
    attacker = await hostile.attacker(respond=True, snapshot=True)
    {**CURRENT_ATTACKS, **LIVE_ATTACKS}[attack](hostile, attacker)
    snapshot = await attacker.snapshot()
    rollback = await attacker.rollback(attacker.good_snapshots[0])
    tasks = await hostile.during(snapshot, rollback)
    await hostile.assert_untouched()
    await hostile.assert_tampered(attacker, *tasks)


def _meta_links_to_decoy(arena: Arena, attacker: Attacker) -> None:
    attacker.meta.rename(attacker.root / ".wvs-real")
    link(attacker.meta, arena.decoy)


def _meta_is(kind: str) -> Plant:
    def plant_node(arena: Arena, attacker: Attacker) -> None:
        plant(attacker.meta, kind, b"{}")

    return plant_node


def _lock_is(kind: str) -> Plant:
    def plant_node(arena: Arena, attacker: Attacker) -> None:
        plant(attacker.meta / "control.lock", kind)

    return plant_node


META_ATTACKS: dict[str, Plant] = {
    ".wvs-links-to-decoy": _meta_links_to_decoy,
    ".wvs-is-a-file": _meta_is("file"),
    ".wvs-missing": _meta_is("missing"),
    "control.lock-fifo": _lock_is("fifo"),
    "control.lock-directory": _lock_is("dir"),
    "control.lock-links-to-decoy-file": lambda a, k: link(k.meta / "control.lock", a.decoy / "control.lock"),
    "control.lock-dangling-link-into-decoy": lambda a, k: link(k.meta / "control.lock", a.decoy / "created.lock"),
    "control.json-directory": lambda a, k: plant(k.control, "dir"),
    "control.lock-links-to-victim-lock": lambda a, k: link(
        k.meta / "control.lock", f"../../{VICTIM}/.wvs/control.lock"
    ),
}


@pytest.mark.parametrize("attack", META_ATTACKS)
async def test_handshake_directory_not_as_wvs_made_it(hostile: Arena, attack: str) -> None:
    """``.wvs`` or its lock (or control.json as a directory WVS cannot replace) tampered with: the snapshot
    dies WORKSPACE_TAMPERED without writing anything through the planted links."""
    attacker = await hostile.attacker()
    META_ATTACKS[attack](hostile, attacker)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    assert not (hostile.decoy / "created.lock").exists()
    await hostile.assert_tampered(attacker, task)


# --- the control file is hostile input (SPEC §6) ----------------------------------------------------


def _frozen(task_id: str) -> bytes:
    return json.dumps({"state": "FROZEN", "timestamp": "2030-01-01T00:00:00.000+00:00", "task_id": task_id}).encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _plant_control(kind: str, data: bytes = b"") -> Plant:
    def plant_node(arena: Arena, attacker: Attacker) -> None:
        plant(attacker.control, kind, data)

    return plant_node


def _fifo_with_writer(arena: Arena, attacker: Attacker) -> None:
    """A FIFO whose write end the agent holds open and never writes to: a plain read would block forever."""
    plant(attacker.control, "fifo")
    writer = os.open(attacker.control, os.O_RDWR | os.O_NONBLOCK)
    attacker.stack.callback(os.close, writer)


CONTROL_PLANTS: dict[str, Plant] = {
    "link-to-decoy-file": lambda a, k: link(k.control, a.decoy / "control.json"),
    "link-to-victim-control-file": lambda a, k: link(k.control, f"../../{VICTIM}/.wvs/control.json"),
    "link-to-dev-zero": lambda a, k: link(k.control, "/dev/zero"),
    "fifo": _plant_control("fifo"),
    "fifo-with-a-writer": _fifo_with_writer,
    "char-device-1-5": _plant_control("chardev"),
    "block-device": _plant_control("blockdev"),
    "socket": _plant_control("socket"),
    "10MiB": _plant_control("file", b'{"state": "RUNNING"}' + b" " * (10 * MiB)),
    "20000-nested-brackets": _plant_control("file", _nested(20_000)),
    "invalid-utf8": _plant_control("file", b'{"state": "RUNNING", "task_id": "\xff\xfe\xc3"}'),
}


@pytest.mark.parametrize("attack", CONTROL_PLANTS)
async def test_control_file_planted_before_the_op(hostile: Arena, attack: str) -> None:
    """A control.json that is no regular small JSON file is read as "no answer" (never followed, opened
    for reading, or blocked on): with nobody answering, the freeze times out, fail-closed."""
    attacker = await hostile.attacker()
    CONTROL_PLANTS[attack](hostile, attacker)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_quiesce_timeout(attacker, task)


class HostileResponder:
    """An agent that answers each freeze request with ``answer(control_path, task_id)`` instead of FROZEN."""

    def __init__(self, root: Path, answer: Callable[[Path, str], None]) -> None:
        self.control = root / ".wvs" / "control.json"
        self.answer = answer
        self.answered: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()

    def _request(self) -> str | None:
        try:
            info = self.control.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
                return None
            request = json.loads(self.control.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if isinstance(request, dict) and request.get("state") == "REQUEST_FREEZE":
            return str(request.get("task_id"))
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            task_id = self._request()
            if task_id is not None and task_id not in self.answered:
                self.answered.append(task_id)
                try:
                    self.answer(self.control, task_id)
                except Exception as error:
                    self.errors.append(error)
            self._stop.wait(0.01)

    @contextlib.contextmanager
    def running(self) -> Iterator[HostileResponder]:
        thread = threading.Thread(target=self._run, name="hostile-responder", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
        assert not self.errors, self.errors


def _put(control: Path, data: bytes) -> None:
    temporary = control.with_name(f".answer-{uuid7()}")
    temporary.write_bytes(data)
    os.replace(temporary, control)


def _put_node(kind: str) -> Callable[[Path, str], None]:
    def answer(control: Path, task_id: str) -> None:
        temporary = control.with_name(f".answer-{uuid7()}")
        plant(temporary, kind)
        os.replace(temporary, control)

    return answer


def _padded(size: int) -> Callable[[Path, str], None]:
    def answer(control: Path, task_id: str) -> None:
        data = _frozen(task_id)
        _put(control, data[:-1] + b" " * (size - len(data)) + b"}")

    return answer


def _linked_answer(kind: str) -> Callable[[Path, str], None]:
    """A valid FROZEN answer elsewhere in ``.wvs``, and control.json a symlink (or a hard link) to it."""

    def answer(control: Path, task_id: str) -> None:
        elsewhere = control.with_name(f"answer-{uuid7()}.json")
        elsewhere.write_bytes(_frozen(task_id))
        temporary = control.with_name(f".answer-{uuid7()}")
        if kind == "symlink":
            os.symlink(elsewhere.name, temporary)
        else:
            os.link(elsewhere, temporary)
        os.replace(temporary, control)

    return answer


def _nested_answer(control: Path, task_id: str) -> None:
    """FROZEN for the task, but with 1900 nested arrays: still at most 4 KiB, deeper than the parser's limit."""
    data = _frozen(task_id)[:-1] + b', "x": ' + _nested(1900) + b"}"
    assert len(data) <= 4096
    _put(control, data)


HOSTILE_ANSWERS: dict[str, Callable[[Path, str], None]] = {
    "frozen-padded-to-10MiB": _padded(10 * MiB),
    "frozen-padded-to-4097-bytes": _padded(4097),
    "symlink-to-a-valid-answer": _linked_answer("symlink"),
    "frozen-nested-1900-deep": _nested_answer,
    "frozen-with-invalid-utf8": lambda c, t: _put(c, _frozen(t)[:-1] + b', "x": "\xff\xc3"}'),
    "frozen-inside-a-list": lambda c, t: _put(c, b"[" + _frozen(t) + b"]"),
    "frozen-for-another-task": lambda c, t: _put(c, _frozen(uuid7())),
    "fifo": _put_node("fifo"),
    "char-device-1-5": _put_node("chardev"),
    "socket": _put_node("socket"),
    # harmless: a valid answer, whatever its shape
    "frozen-padded-to-4096-bytes": _padded(4096),
    "hard-link-to-a-valid-answer": _linked_answer("hardlink"),
}
HARMLESS_ANSWERS = {"frozen-padded-to-4096-bytes", "hard-link-to-a-valid-answer"}


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
async def test_agent_answers_the_freeze_with_garbage(hostile: Arena, answer: str) -> None:
    """The agent answers REQUEST_FREEZE, but not with a regular JSON file of at most 4 KiB: fail-closed
    (QUIESCE_TIMEOUT, nothing cloned). A valid answer of exactly 4 KiB or through a hard link is fine."""
    attacker = await hostile.attacker()
    responder = HostileResponder(attacker.root, HOSTILE_ANSWERS[answer])
    with responder.running():
        (task,) = await hostile.during(await attacker.snapshot())
    assert responder.answered == [task["task_id"]], "the agent never saw the freeze request"
    await hostile.assert_untouched()
    if answer in HARMLESS_ANSWERS:
        hostile.assert_succeeded(task)
        copy = attacker.snapshots / task["params"]["snapshot_id"]
        assert tree_signature(copy) == tree_signature(attacker.tree)
    else:
        hostile.assert_quiesce_timeout(attacker, task)


async def test_fifo_control_files_in_many_workspaces_block_nobody(hostile: Arena) -> None:
    """Four agents make control.json a FIFO (two hold its write end open) and all are snapshotted at once:
    each freeze times out on its own while the victim's snapshot goes through; then the executor's start-up
    recovery walks every view, FIFOs and worse included, and finishes promptly without touching them."""
    attackers = [await hostile.attacker() for _ in range(4)]
    for number, attacker in enumerate(attackers):
        (_fifo_with_writer if number % 2 else CONTROL_PLANTS["fifo"])(hostile, attacker)
    tasks = await hostile.during(*[await attacker.snapshot() for attacker in attackers])
    await hostile.assert_untouched()
    for attacker, task in zip(attackers, tasks, strict=True):
        hostile.assert_quiesce_timeout(attacker, task)

    # Start-up recovery (what the executor runs before serving) with the views as hostile as they get.
    for number, attacker in enumerate(attackers):
        (_fifo_with_writer if number % 2 else CONTROL_PLANTS["fifo"])(hostile, attacker)
    plant(attackers[0].meta / "control.lock", "fifo")
    plant(attackers[1].meta / ".control.json.wvs-tmp", "fifo")  # FIFOs named as WVS's temporaries: unlinked
    plant(attackers[2].root / ".current.wvs-tmp", "fifo")
    link(attackers[3].meta / ".control.json.wvs-tmp", hostile.decoy / "secret.txt")
    config = config_from_dict(
        {"executor": {"mount_path": str(hostile.mount), "quiesce_timeout": f"{QUIESCE_TIMEOUT:g}s"}}
    )
    runner = OpRunner(config, PluginRegistry.load(config.plugins))
    recovery = asyncio.create_task(runner.recover_all())
    await hostile.victim_snapshot()
    await asyncio.wait_for(recovery, timeout=PROMPT)
    for attacker in attackers:
        assert stat.S_ISFIFO(attacker.control.lstat().st_mode), "recovery replaced a control file it could not read"
    for stray in (attackers[1].meta / ".control.json.wvs-tmp", attackers[2].root / ".current.wvs-tmp"):
        assert not await asyncio.to_thread(os.path.lexists, stray), "a leftover named as WVS's was kept"
    stray = attackers[3].meta / ".control.json.wvs-tmp"
    assert not await asyncio.to_thread(os.path.lexists, stray), "the stray link was kept"
    await hostile.assert_untouched()


class LockHolder:
    """The agent holds ``flock`` on control.lock, releasing it after ``hold`` seconds."""

    def __init__(self, path: Path, hold: float) -> None:
        self._lock = threading.Lock()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.timer = threading.Timer(hold, self.release)
        self.timer.start()

    def release(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def close(self) -> None:
        self.timer.cancel()
        self.release()


def _task_seconds(task: dict[str, Any]) -> float:
    return (datetime.fromisoformat(task["ended_at"]) - datetime.fromisoformat(task["started_at"])).total_seconds()


async def test_agent_holding_the_control_lock(hostile: Arena) -> None:
    """The agent holds control.lock for 6 s: WVS cannot even ask for the freeze, so the task must fail
    QUIESCE_TIMEOUT within the freeze timeout — never wait on the lock longer than that (SPEC §6)."""
    attacker = await hostile.attacker()
    holder = LockHolder(attacker.meta / "control.lock", hold=6.0)
    attacker.stack.callback(holder.close)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_quiesce_timeout(attacker, task)
    assert _task_seconds(task) < QUIESCE_TIMEOUT + 2.5, f"the task waited {_task_seconds(task):.1f}s on the lock"


def start_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    """Run ``code`` in another Python process (an agent's own program), stdin and stdout piped."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


LEASE_HOLDER = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, signal.SIG_IGN)  # ignore the lease-break notice
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)  # F_SETLEASE: a write lease, any other open must wait for its break
print("leased", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("name", ["control.json", "control.lock"])
async def test_agent_holds_a_lease_on_a_handshake_file(hostile: Arena, name: str) -> None:
    """A write lease would make a blocking open wait 45 s for the lease break: WVS must neither block nor
    fail otherwise than "no answer" (the freeze times out)."""
    attacker = await hostile.attacker()
    path = attacker.meta / name
    path.touch()
    holder = start_python(LEASE_HOLDER, str(path))
    attacker.stack.callback(holder.wait)
    attacker.stack.callback(holder.kill)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"leased"
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_quiesce_timeout(attacker, task)


# --- harmless attacks: what the agent writes inside its own trees is data ---------------------------


def _plant_links(arena: Arena, attacker: Attacker) -> dict[str, str]:
    """Links at every depth of the live tree to the decoys and the victim; returns ``{path: target}``."""
    tree = attacker.tree
    (tree / "deep" / "er" / "still" / "deeper").mkdir(parents=True)
    targets = {
        "a": str(arena.decoy),
        "to-secret": str(arena.decoy / "secret.txt"),
        "to-volume-decoy": "../../../_decoy",
        "to-root": "/",
        "victim-absolute": str(arena.victim_tree),
        "deep/er/x": os.path.relpath(arena.victim_root, tree / "deep" / "er"),
        "deep/er/victim-file": os.path.relpath(arena.victim_tree / "victim-only.txt", tree / "deep" / "er"),
        "deep/er/still/deeper/decoy": os.path.relpath(arena.decoy, tree / "deep" / "er" / "still" / "deeper"),
        "deep/er/still/deeper/up": "../../../../../../../../..",
        "deep/.wvs": str(arena.decoy),  # the old layout's name, inside the tree
        "snapshots": str(arena.decoy),
        "dangling-into-decoy": str(arena.decoy / "does-not-exist"),
    }
    for name, target in targets.items():
        os.symlink(target, tree / name)
    return targets


async def test_links_inside_current_stay_links_through_snapshot_and_rollback(hostile: Arena) -> None:
    """Links at every depth to the decoys, the victim, ``/``: a snapshot keeps them as links (never
    copies their targets), a rollback restores them as links and writes through none of them."""
    attacker = await hostile.attacker(respond=True)
    targets = _plant_links(hostile, attacker)
    expected = tree_signature(attacker.tree)
    (snapshot,) = await hostile.during(await attacker.snapshot())
    copy = attacker.snapshots / snapshot["params"]["snapshot_id"]
    for name, target in targets.items():
        assert os.readlink(attacker.tree / name) == target
    (attacker.current / "mine.txt").write_text("changed after the snapshot\n")
    (attacker.current / "a").unlink()
    (attacker.current / "a").mkdir()  # where the link was, now a directory with a file
    (attacker.current / "a" / "secret.txt").write_text("would overwrite the decoy if written through\n")
    (rollback,) = await hostile.during(await attacker.rollback(snapshot["params"]["snapshot_id"]))
    await hostile.assert_untouched()
    hostile.assert_succeeded(snapshot, rollback)
    assert tree_signature(copy) == expected, "the snapshot is not an exact copy (links followed?)"
    new_tree = attacker.live / rollback["params"]["new_live_id"]
    assert os.readlink(attacker.current) == f"live/{new_tree.name}"
    assert tree_signature(new_tree) == expected, "the rollback did not restore the links as links"
    assert not tree_contains(copy, hostile.victim_secret) and not tree_contains(new_tree, hostile.victim_secret)


async def test_old_layout_names_planted_in_the_view(hostile: Arena) -> None:
    """``snapshots -> decoy`` and ``.wvs/snapshot.json`` files (the earlier layout's names) in the view and its
    trees mean nothing to WVS: snapshot, rollback, drop and fsck leave the decoy and those names alone."""
    attacker = await hostile.attacker(respond=True)
    link(attacker.root / "snapshots", hostile.decoy)
    link(attacker.root / "snapshot.json", hostile.decoy / "snapshot.json")
    link(attacker.meta / "snapshot.json", hostile.decoy / "snapshot.json")
    link(attacker.meta / "snapshots", hostile.decoy)
    (attacker.tree / ".wvs").mkdir()
    (attacker.tree / ".wvs" / "snapshot.json").write_text(json.dumps({"snapshot_id": hostile.victim_snapshot_ids[0]}))
    link(attacker.tree / "snapshots", hostile.decoy)
    planted = {name: os.readlink(attacker.root / name) for name in ("snapshots", "snapshot.json", ".wvs/snapshot.json")}
    first = await attacker.take_snapshot()
    (attacker.current / "mine.txt").write_text("v2\n")
    second = await attacker.take_snapshot()
    rollback = await attacker.rollback(first)
    drop = await hostile.client.delete(f"/v1/workspaces/{attacker.wsid}/snapshots/{second}", headers=key())
    assert drop.status_code == 202, drop.text
    tasks = await hostile.during(rollback, drop.json()["task_id"])
    await hostile.assert_untouched()
    hostile.assert_succeeded(*tasks)
    report = await run_fsck_library(hostile, attacker.wsid, fix=True, prune=True)
    assert [f for f in report.findings if f.kind in ("workspace_tampered", "check_failed")] == [], report
    assert {name: os.readlink(attacker.root / name) for name in planted} == planted
    assert not (attacker.snapshots / second).exists() and (attacker.snapshots / first).is_dir()
    assert (attacker.snapshots / first / ".wvs" / "snapshot.json").is_file(), "WVS changed the agent's data"
    await hostile.assert_untouched()


async def run_fsck_library(arena: Arena, wsid: str | None, fix: bool, prune: bool) -> Any:
    """``wvs fsck`` through its library entry point (what the CLI runs)."""
    engine = create_engine(DatabaseConfig(dsn=arena.dsn, pool_size=2))
    try:
        return await default_fsck(engine, arena.mount).run(wsid, fix=fix, prune=prune)
    finally:
        await engine.dispose()


async def test_names_like_wvs_temporaries_pointing_outside(hostile: Arena) -> None:
    """Links at the names of WVS's temporary files (``.current.wvs-tmp``, ``.wvs/.control.json.wvs-tmp``,
    which recovery removes) point at decoy files: recovery removes the links themselves, never their
    targets; names that merely look temporary are the agent's and stay."""
    attacker = await hostile.attacker(respond=True)
    link(attacker.root / ".current.wvs-tmp", hostile.decoy / "secret.txt")
    link(attacker.meta / ".control.json.wvs-tmp", hostile.volume_decoy / "secret.txt")
    link(attacker.root / ".current.tmp-aaaaaaaaaaaa", hostile.decoy)
    os.link(attacker.tree / "mine.txt", attacker.meta / ".control.json.tmp-eeeeeeeeeeee")
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_succeeded(task)
    names = {p.name for p in (*attacker.root.iterdir(), *attacker.meta.iterdir())}
    assert ".current.wvs-tmp" not in names and ".control.json.wvs-tmp" not in names
    assert {".current.tmp-aaaaaaaaaaaa", ".control.json.tmp-eeeeeeeeeeee"} <= names, "the agent's own names stay"
    assert (attacker.tree / "mine.txt").read_text() == f"attacker {attacker.wsid}\n"


async def test_a_directory_at_a_wvs_temporary_name_is_tampering(hostile: Arena) -> None:
    """A directory where WVS writes ``current``'s replacement link: WVS cannot use its own name, so the
    op fails WORKSPACE_TAMPERED (and nothing in the directory is touched)."""
    attacker = await hostile.attacker(respond=True)
    plant(attacker.root / ".current.wvs-tmp", "dir")
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    await hostile.assert_tampered(attacker, task)
    assert (attacker.root / ".current.wvs-tmp").is_dir()


async def test_own_live_tree_named_like_the_victims(hostile: Arena) -> None:
    """The agent renames its own tree to the victim's live id and points ``current`` at it: WVS resolves
    that name in the attacker's own ``live`` — it snapshots the attacker's data, never the victim's."""
    attacker = await hostile.attacker(respond=True)
    attacker.tree.rename(attacker.live / hostile.victim_live_id)
    link(attacker.current, f"live/{hostile.victim_live_id}")
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_succeeded(task)
    copy = attacker.snapshots / task["params"]["snapshot_id"]
    assert (copy / "mine.txt").read_text() == f"attacker {attacker.wsid}\n"
    assert not tree_contains(copy, hostile.victim_secret)


def _make_deep_tree(root: Path, depth: int) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.symlink(str(root), "back-to-the-top", dir_fd=fd)
    finally:
        os.close(fd)


async def test_very_deep_tree(hostile: Arena) -> None:
    """1100 nested directories (deeper than Python's recursion limit) are data like any other."""
    attacker = await hostile.attacker(respond=True)
    await asyncio.to_thread(_make_deep_tree, attacker.tree / "dir", 1100)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_succeeded(task)


ROLLBACK_TARGETS: dict[str, Callable[[Arena, Path], None]] = {
    "link-to-victim-tree": lambda a, p: link(p, a.victim_tree),
    "link-to-decoy": lambda a, p: link(p, a.decoy),
    "fifo": lambda a, p: plant(p, "fifo"),
    "real-directory": lambda a, p: plant(p, "dir"),  # harmless: the agent only fools itself
}


@pytest.mark.parametrize("kind", ROLLBACK_TARGETS)
async def test_rollback_target_name_planted_in_advance(hostile: Arena, kind: str) -> None:
    """A rollback's new live id is in its task's params as soon as it is accepted: while an earlier
    snapshot holds the queue (its freeze is never answered), the agent plants that name in ``live/``."""
    attacker = await hostile.attacker(snapshot=True)
    allowed: set[str] = set()
    responder = HostileResponder(attacker.root, lambda c, t: _put(c, _frozen(t)) if t in allowed else None)
    with responder.running():
        blocker = await attacker.snapshot()
        rollback = await attacker.rollback(attacker.good_snapshots[0])
        allowed.add(rollback)
        new_live_id = (await hostile.client.get(f"/v1/tasks/{rollback}")).json()["params"]["new_live_id"]
        ROLLBACK_TARGETS[kind](hostile, attacker.live / new_live_id)
        blocked, rolled = await hostile.during(blocker, rollback)
    await hostile.assert_untouched()
    assert rolled["started_at"] >= blocked["ended_at"], "the rollback ran before the name was planted"
    hostile.assert_quiesce_timeout(attacker, blocked)
    if kind == "real-directory":
        hostile.assert_succeeded(rolled)
        assert os.readlink(attacker.current) == f"live/{new_live_id}"
        assert (attacker.current / "inside.txt").read_text() == "planted"
    else:
        assert rolled["status"] == "DEAD" and rolled["error"]["reason"] == TAMPERED, rolled
        assert os.readlink(attacker.current) == f"live/{attacker.live_id}"
        assert in_flight(hostile.mount, attacker.wsid) == []


# --- races: the agent swaps names while WVS works ---------------------------------------------------


class Flipper:
    """A thread repeating ``step`` (an attack move) until the block ends; then ``restore`` runs."""

    def __init__(self, step: Callable[[], None], restore: Callable[[], None]) -> None:
        self.step = step
        self.restore = restore
        self.flips = 0
        self.failed_moves = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flipper", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
                self.flips += 1
            except OSError:  # WVS renamed something under the agent's feet: try again
                self.failed_moves += 1

    def __enter__(self) -> Flipper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.restore()


def assert_race_outcomes(
    arena: Arena, attacker: Attacker, tasks: list[dict[str, Any]], expected: dict[str, tuple[Any, ...]]
) -> None:
    """Every task of the race either succeeded at its first attempt or died WORKSPACE_TAMPERED; every
    snapshot the attacker holds (the tree a rollback kept included) is its own tree exactly — ``expected``, its
    signature before the race — and no tree it got holds the victim's data."""
    outcomes = [(task["status"], (task.get("error") or {}).get("reason")) for task in tasks]
    # CLONE_FAILED: ``juicefs clone`` finds its mount point by walking the source's path string, so an agent
    # renaming its own tree mid-clone can fail its own (retryable) clone — nothing is read elsewhere.
    assert set(outcomes) <= {("SUCCEEDED", None), ("DEAD", TAMPERED), ("DEAD", "CLONE_FAILED")}, tasks
    assert all(task["attempt"] == 1 for task in tasks), tasks
    for name in os.listdir(attacker.snapshots):
        if name.endswith(".json"):
            continue
        copy = attacker.snapshots / name
        assert not tree_contains(copy, arena.victim_secret), f"{copy} holds the victim's data"
        assert tree_signature(copy) == expected, f"{copy} is not the attacker's own tree"
    for task in tasks:
        if task["op"] == "set_current" and task["status"] == "SUCCEEDED" and not task["result"]["noop"]:
            new_tree = attacker.live / task["params"]["new_live_id"]
            assert new_tree.is_dir() and not new_tree.is_symlink(), (task, sorted(os.listdir(attacker.live)))
            assert not tree_contains(new_tree, arena.victim_secret)
            assert tree_signature(new_tree) == expected
    for task in tasks:
        if task["op"] == "snapshot_create" and task["status"] == "SUCCEEDED":
            attacker.good_snapshots.append(task["params"]["snapshot_id"])
    arena.assert_nothing_made(attacker, *[t for t in tasks if t["status"] != "SUCCEEDED"])


@pytest.mark.parametrize("move", ["exchange", "rename-then-link"])
async def test_race_swapping_the_live_tree_with_a_link_to_the_victim(hostile: Arena, move: str) -> None:
    """``live/<id>`` is swapped with a link to the victim's tree nonstop during four snapshots and a
    rollback — atomically (RENAME_EXCHANGE), or renamed away, replaced by the link and put back: WVS
    clones the directory it checked, or refuses — never the victim."""
    attacker = await hostile.attacker(respond=True, snapshot=True)
    live_fd = os.open(attacker.live, os.O_RDONLY | os.O_DIRECTORY)
    attacker.stack.callback(os.close, live_fd)
    name, away = attacker.live_id, ".away"
    os.symlink(hostile.victim_tree, ".evil", dir_fd=live_fd)

    def step() -> None:
        if move == "exchange":
            exchange(live_fd, name, ".evil")
        else:
            os.rename(name, away, src_dir_fd=live_fd, dst_dir_fd=live_fd)
            os.symlink(hostile.victim_tree, name, dir_fd=live_fd)
            os.unlink(name, dir_fd=live_fd)
            os.rename(away, name, src_dir_fd=live_fd, dst_dir_fd=live_fd)

    def restore() -> None:
        if attacker.tree.is_symlink():
            exchange(live_fd, name, ".evil")
        if os.path.lexists(attacker.live / away):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=live_fd)
            os.rename(away, name, src_dir_fd=live_fd, dst_dir_fd=live_fd)

    own = tree_signature(attacker.tree)
    with Flipper(step, restore) as flipper:
        submitted = [await attacker.snapshot() for _ in range(4)]
        submitted.append(await attacker.rollback(attacker.good_snapshots[0]))
        tasks = await hostile.during(*submitted)
    assert flipper.flips > 50, flipper.flips
    await hostile.assert_untouched()
    assert_race_outcomes(hostile, attacker, tasks, own)


async def test_race_swapping_current_with_a_link_to_the_victim(hostile: Arena) -> None:
    """``current`` is replaced by a link to the victim's tree and put back, nonstop, during snapshots and
    rollbacks."""
    attacker = await hostile.attacker(respond=True, snapshot=True)
    evil = str(hostile.victim_tree)
    good = [os.readlink(attacker.current)]

    def step() -> None:
        target = os.readlink(attacker.current)
        if target != evil:
            good.append(target)
        link(attacker.current, evil)
        link(attacker.current, good[-1])

    def restore() -> None:
        if os.readlink(attacker.current) == evil:
            link(attacker.current, good[-1])

    own = tree_signature(attacker.tree)
    with Flipper(step, restore) as flipper:
        tasks: list[dict[str, Any]] = []
        for rounds in range(1, 9):  # at least two rounds, and as many as it takes the attack to flip 50 times
            snapshot = await attacker.snapshot()
            tasks += await hostile.during(snapshot, await attacker.rollback(attacker.good_snapshots[0]))
            if rounds >= 2 and flipper.flips > 50:
                break
        tasks += await hostile.during(await attacker.snapshot())
    assert flipper.flips > 50, flipper.flips
    await hostile.assert_untouched()
    assert_race_outcomes(hostile, attacker, tasks, own)


async def test_race_swapping_live_with_a_link_to_the_victims_live(hostile: Arena) -> None:
    """The agent names its own tree after the victim's live id, points ``current`` at it, and swaps its
    ``live`` with a link to the victim's ``live`` nonstop: through the link, ``current`` IS the victim's
    tree — WVS must snapshot the attacker's own tree or refuse."""
    attacker = await hostile.attacker(respond=True, snapshot=True)
    own_tree = attacker.live / hostile.victim_live_id
    attacker.tree.rename(own_tree)
    link(attacker.current, f"live/{hostile.victim_live_id}")
    root_fd = os.open(attacker.root, os.O_RDONLY | os.O_DIRECTORY)
    attacker.stack.callback(os.close, root_fd)
    os.symlink(f"../{VICTIM}/live", attacker.root / ".live-evil")

    def restore() -> None:
        if attacker.live.is_symlink():
            exchange(root_fd, "live", ".live-evil")

    own = tree_signature(own_tree)
    with Flipper(lambda: exchange(root_fd, "live", ".live-evil"), restore) as flipper:
        submitted = [await attacker.snapshot() for _ in range(4)]
        submitted.append(await attacker.rollback(attacker.good_snapshots[0]))
        tasks = await hostile.during(*submitted)
    assert flipper.flips > 50, flipper.flips
    await hostile.assert_untouched()
    assert_race_outcomes(hostile, attacker, tasks, own)


# --- attacks through the API ------------------------------------------------------------------------


async def test_one_workspace_attacks_another_through_the_api(hostile: Arena) -> None:
    """With mallory's token, the victim (alice's) does not exist: every route answers 404 and lists omit
    it; the victim's snapshot ids used on mallory's own workspace are refused; ids shaped like paths are
    400/404, never 500; without a token, 401."""
    attacker = await hostile.attacker(respond=True, snapshot=True)
    victim_snapshot = hostile.victim_snapshot_ids[0]
    victim_tasks = (await hostile.client.get("/v1/tasks", params={"wsid": VICTIM})).json()["items"]
    victim_task = victim_tasks[0]["task_id"]

    async def mallory(method: str, path: str, body: Any = None) -> httpx.Response:
        return await hostile.as_user(ATTACKER_OWNER, method, path, body)

    for method, path, body in [
        ("GET", f"/v1/workspaces/{VICTIM}", None),
        ("GET", f"/v1/workspaces/{VICTIM}/snapshots", None),
        ("GET", f"/v1/workspaces/{VICTIM}/current", None),
        ("GET", f"/v1/workspaces/{VICTIM}/audit", None),
        ("POST", f"/v1/workspaces/{VICTIM}/snapshots", {}),
        ("POST", f"/v1/workspaces/{VICTIM}/current:set", {"snapshot_id": victim_snapshot}),
        ("DELETE", f"/v1/workspaces/{VICTIM}/snapshots/{victim_snapshot}", None),
        ("DELETE", f"/v1/workspaces/{VICTIM}", None),
        ("POST", f"/v1/workspaces/{VICTIM}/retry-init", None),
        ("GET", f"/v1/tasks/{victim_task}", None),
        ("POST", f"/v1/tasks/{victim_task}:cancel", None),
    ]:
        response = await mallory(method, path, body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "WVS_NOT_FOUND", response.text
        assert victim_snapshot not in response.text and hostile.victim_live_id not in response.text
    listed = (await mallory("GET", "/v1/workspaces?limit=100")).json()["items"]
    assert VICTIM not in {workspace["wsid"] for workspace in listed}
    for listing in (f"/v1/tasks?wsid={VICTIM}", f"/v1/events?wsid={VICTIM}"):  # as if it did not exist
        hidden = await mallory("GET", listing)
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "WVS_NOT_FOUND", hidden.text

    # The victim's ids on mallory's own workspace.
    drop = await mallory("DELETE", f"/v1/workspaces/{attacker.wsid}/snapshots/{victim_snapshot}")
    assert drop.status_code == 404, drop.text
    rollback = await mallory("POST", f"/v1/workspaces/{attacker.wsid}/current:set", {"snapshot_id": victim_snapshot})
    if rollback.status_code == 202:  # accepted, then refused when claimed
        refused = await wait_task(hostile.client, rollback.json()["task_id"])
        assert refused["status"] == "DEAD" and refused["error"]["code"] == "WVS_NOT_FOUND", refused
    else:
        assert rollback.status_code == 404, rollback.text
    # Taking the victim's name or acting for its owner.
    assert (await mallory("POST", "/v1/workspaces", {"wsid": VICTIM})).status_code == 409
    for_alice = await mallory("POST", "/v1/workspaces", {"wsid": "mine-for-alice", "owner": VICTIM_OWNER})
    assert for_alice.status_code == 403, for_alice.text
    # Ids shaped like paths.
    for method, path in [
        ("GET", "/v1/workspaces/..%2Fvictim"),
        ("GET", f"/v1/workspaces/{attacker.wsid}%2F..%2F{VICTIM}/snapshots"),
        ("DELETE", f"/v1/workspaces/{attacker.wsid}/snapshots/..%2F..%2F{VICTIM}%2F{victim_snapshot}"),
        ("POST", f"/v1/workspaces/{attacker.wsid}/current:set"),
        ("GET", f"/v1/workspaces/{attacker.wsid}/snapshots?cursor=..%2F..%2Fvictim"),
    ]:
        body = {"snapshot_id": f"../../{VICTIM}/{victim_snapshot}"} if method == "POST" else None
        response = await mallory(method, path, body)
        assert response.status_code in (400, 404), (path, response.text)
        assert set(response.json()) == {"error"}, response.text
    for wsid in ("..", ".wvs", "_decoy", f"{VICTIM}/../x", "a" * 64, "UPPER"):
        response = await mallory("POST", "/v1/workspaces", {"wsid": wsid})
        assert response.status_code in (400, 409), (wsid, response.text)
    assert (await hostile.client.get(f"/v1/workspaces/{VICTIM}", headers={"Authorization": ""})).status_code == 401

    # The victim is as it was, and keeps working.
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_succeeded(task)
    victim = (await hostile.client.get(f"/v1/workspaces/{VICTIM}")).json()
    assert (victim["owner"], victim["state"]) == (VICTIM_OWNER, "ACTIVE")
    listed_snapshots = (await hostile.client.get(f"/v1/workspaces/{VICTIM}/snapshots?limit=100")).json()["items"]
    assert set(hostile.victim_snapshot_ids) <= {s["snapshot_id"] for s in listed_snapshots}


# --- the agent cannot reach WVS's area --------------------------------------------------------------


def _as_uid_1000(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as uid/gid 1000 with no groups, starting in ``cwd`` (relative paths: no parent of
    the mount needs to be searchable by uid 1000)."""
    command = ["setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups", *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=30)


async def test_a_non_root_agent_cannot_reach_its_snapshots(hostile: Arena) -> None:
    """``<mount>/.wvs`` (snapshots, tmp, locks) is root's, mode 0700: an agent running as uid 1000 reads
    its own view but cannot list WVS's area nor read its own snapshot by a path it knows."""
    attacker = await hostile.attacker(respond=True)
    for path in (attacker.tree, attacker.tree / "mine.txt"):
        os.chown(path, 1000, 1000)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    hostile.assert_succeeded(task)
    snapshot = task["params"]["snapshot_id"]
    area = hostile.mount / ".wvs"
    for directory in (area, area / "snapshots", area / "tmp", area / "locks", attacker.snapshots):
        info = directory.lstat()
        assert stat.S_ISDIR(info.st_mode) and (info.st_uid, info.st_gid) == (0, 0), directory
        assert stat.S_IMODE(info.st_mode) == 0o700, f"{directory} is {oct(stat.S_IMODE(info.st_mode))}"
    own = await asyncio.to_thread(_as_uid_1000, hostile.mount, "cat", f"{attacker.wsid}/current/mine.txt")
    assert own.returncode == 0 and own.stdout == f"attacker {attacker.wsid}\n", own  # the control case
    for argv in (
        ("ls", ".wvs"),
        ("ls", f".wvs/snapshots/{attacker.wsid}"),
        ("cat", f".wvs/snapshots/{attacker.wsid}/{snapshot}/mine.txt"),
        ("cat", f".wvs/snapshots/{attacker.wsid}/{snapshot}.json"),
        ("touch", f".wvs/snapshots/{attacker.wsid}/{snapshot}/planted"),
        ("ls", f".wvs/snapshots/{VICTIM}"),
    ):
        refused = await asyncio.to_thread(_as_uid_1000, hostile.mount, *argv)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, (argv, refused)
    assert not (attacker.snapshots / snapshot / "planted").exists()


# --- the volume goes away ---------------------------------------------------------------------------


def _mount_bind(source: Path, target: Path) -> None:
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True, capture_output=True)


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True, capture_output=True)


@contextlib.contextmanager
def bind_mounted(source: Path, target: Path) -> Iterator[Callable[[], None]]:
    """``mount --bind source target`` for the block; yields a function that unmounts early. Always unmounted."""
    _mount_bind(source, target)
    mounted = [True]

    def unmount() -> None:
        if mounted[0]:
            _umount(target)
            mounted[0] = False

    try:
        yield unmount
    finally:
        unmount()


async def test_init_on_a_vanished_mount_never_becomes_active(
    hostile: Arena, database: str, juicefs_volume: JuiceFSVolume, tmp_path: Path, start_service: StartService
) -> None:
    """The executor starts on a (bind-mounted) volume that then goes away: a new workspace's init fails
    retryable with VOLUME_UNAVAILABLE and never becomes ACTIVE, and nothing is written to the directory
    left under the mount point. Once the volume is back, retry-init succeeds."""
    source = juicefs_volume.mount_path / f"bind-{os.getpid()}-{uuid7()}"
    source.mkdir()
    target = tmp_path / "mnt"
    target.mkdir()
    with bind_mounted(source, target) as unmount:
        service = await start_service(make_config(database, target, plugins={"quiesce": "none"}))
        unmount()
        assert os.listdir(target) == []
        async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
            created = await client.post("/v1/workspaces", json={"wsid": "orphan", "owner": "x"}, headers=key())
            assert created.status_code == 202, created.text
            init = created.json()["init_task_id"]
            first = await wait_task(client, init, until={"FAILED", "DEAD", "SUCCEEDED"})
            await hostile.victim_snapshot()  # the other service's victim is not held up
            final = await wait_task(client, init)
            for task in (first, final):
                assert task["error"]["reason"] == "VOLUME_UNAVAILABLE", task
            assert final["status"] == "DEAD" and final["attempt"] == final["max_attempts"], final
            workspace = (await client.get("/v1/workspaces/orphan")).json()
            assert workspace["state"] == "INIT_FAILED", workspace
            assert os.listdir(target) == [], "the executor wrote into the directory under the vanished mount"
            rows = await hostile_audit(client, "orphan")
            actions = [row["action"] for row in rows]
            assert actions.count("task.failed") == final["max_attempts"] - 1, actions  # retryable until the last
            states = [json.dumps(row["payload"]) for row in rows if row["action"].startswith("workspace.")]
            assert not [state for state in states if "ACTIVE" in state], states
            # The volume comes back: the same init now works, on the volume.
            await asyncio.to_thread(_mount_bind, source, target)
            try:
                retry = await client.post("/v1/workspaces/orphan/retry-init", headers=key())
                assert retry.status_code == 202, retry.text
                assert (await wait_task(client, retry.json()["task_id"]))["status"] == "SUCCEEDED"
                assert (source / "orphan" / "current").is_symlink()
            finally:
                await asyncio.to_thread(_umount, target)
    assert os.listdir(target) == []
    await hostile.assert_untouched()


async def hostile_audit(client: httpx.AsyncClient, wsid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/workspaces/{wsid}/audit", params={"limit": 100})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# --- fsck on a hostile volume (kept last: they sweep every view the attacks above left) ----------------


async def run_fsck_cli(arena: Arena, tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``wvs fsck --json ARGS`` with a config file naming the arena's database and mount."""
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{arena.dsn}"\n[executor]\nmount_path = "{arena.mount}"\n')
    result = await asyncio.to_thread(
        CliRunner().invoke, wvs_cli, ["fsck", "--config", str(config_file), "--json", *args]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


async def test_fsck_fix_prune_on_an_attacker_whose_live_is_the_victims(hostile: Arena, tmp_path: Path) -> None:
    """``wvs fsck --fix --prune`` over the whole volume after every attack above, one attacker's ``live``
    being a link to the victim's: the attacker is reported ``workspace_tampered`` (nothing repaired or
    pruned through the link), the victim is checked like any workspace and loses nothing, and fsck goes
    through every workspace however broken."""
    attacker = await hostile.attacker(snapshot=True)
    _live_links_to_victim_live(hostile, attacker)
    (attacker.root / "live.real" / uuid7()).mkdir()  # a never-current tree where prune may look
    # Another one plants links named like live trees — never current, so --prune removes them: the links.
    linker = await hostile.attacker()
    link(linker.live / hostile.victim_live_id, hostile.victim_tree)
    link(linker.live / uuid7(), hostile.decoy)
    link(linker.live / uuid7(), f"../../{VICTIM}/live/{hostile.victim_live_id}")
    code, report = await run_fsck_cli(hostile, tmp_path)
    assert code == 1 and not report["clean"]
    code, report = await run_fsck_cli(hostile, tmp_path, "--fix", "--prune")
    await hostile.assert_untouched()
    findings = {(f["wsid"], f["kind"]) for f in report["findings"]}
    assert (attacker.wsid, "workspace_tampered") in findings, report
    assert not any(f["fixed"] for f in report["findings"] if f["wsid"] == attacker.wsid), report
    assert VICTIM in report["checked"], report
    assert [f for f in report["findings"] if f["wsid"] == VICTIM] == [], report
    known = await every_wsid(hostile.client)
    assert known <= set(report["checked"]) | set(report["skipped"]), "fsck stopped early"
    assert {(f["kind"], f["fixed"]) for f in report["findings"] if f["wsid"] == linker.wsid} == {
        ("live_tree_never_current", True)
    }, report
    assert sorted(os.listdir(linker.live)) == [linker.live_id], "prune left a planted link"
    assert not [f for f in report["findings"] if f["kind"] == "check_failed"], report
    assert attacker.live.is_symlink() and os.readlink(attacker.live) == str(hostile.victim_live)
    (task,) = await hostile.during(await attacker.snapshot())
    await hostile.assert_untouched()
    await hostile.assert_tampered(attacker, task)


async def every_wsid(client: httpx.AsyncClient) -> set[str]:
    """Every workspace's id, page by page."""
    wsids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/workspaces", params=params)).json()
        wsids |= {workspace["wsid"] for workspace in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return wsids


RMR_RACE_ROUNDS = 400
RMR_RACE_SECONDS = 20.0  # the race is won in ~40 rounds (~4 s) here; 20 s miss it once in ~1000 runs
EXCHANGER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
root = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
print("swapping", flush=True)
while True:
    libc.renameat2(root, b"live", root, b".live-evil", 2)  # RENAME_EXCHANGE
"""


@pytest.mark.parametrize("target_kind", ["another-views-live-tree", "own-snapshot-tree"])
async def test_fsck_prune_racing_live_swaps_deletes_nothing_outside(hostile: Arena, target_kind: str) -> None:
    """The attacker makes a never-current tree named like the target in its own ``live`` and swaps ``live``
    with a link to the target's directory (RENAME_EXCHANGE, nonstop, from another process) while
    ``fsck --fix --prune`` prunes that tree, round after round. Targets: a second victim's live tree, and
    the attacker's own snapshot (which it may only change through the API)."""
    if target_kind == "another-views-live-tree":
        second = await create_workspace(hostile.client, "victim-two", owner=VICTIM_OWNER)
        target = Path(second["current_path"])
        (target / "precious.txt").write_text("the second victim's work\n")
        attacker = await hostile.attacker()
        evil = "../victim-two/live"
    else:
        attacker = await hostile.attacker(snapshot=True)
        target = attacker.snapshots / attacker.good_snapshots[0]
        evil = f"../.wvs/snapshots/{attacker.wsid}"
    before = signature(target)
    real_live = os.open(attacker.live, os.O_RDONLY | os.O_DIRECTORY)
    attacker.stack.callback(os.close, real_live)
    os.symlink(evil, attacker.root / ".live-evil")
    swapper = start_python(EXCHANGER, str(attacker.root))
    engine = create_engine(DatabaseConfig(dsn=hostile.dsn, pool_size=2))
    pruned = rounds = 0
    try:
        assert swapper.stdout is not None and swapper.stdout.readline().strip() == b"swapping"
        fsck = default_fsck(engine, hostile.mount)
        deadline = time.monotonic() + RMR_RACE_SECONDS
        while rounds < RMR_RACE_ROUNDS and time.monotonic() < deadline and await asyncio.to_thread(target.is_dir):
            rounds += 1
            with contextlib.suppress(FileExistsError):
                os.mkdir(target.name, dir_fd=real_live)
            report = await fsck.run(attacker.wsid, fix=True, prune=True)
            pruned += any(f.kind == "live_tree_never_current" and f.fixed for f in report.findings)
    finally:
        swapper.kill()
        swapper.wait()
        await engine.dispose()
        if attacker.live.is_symlink():
            attacker.live.unlink()
            (attacker.root / ".live-evil").rename(attacker.live)
    assert pruned > 0, "fsck never got to prune: the race did not run"
    await hostile.victim_snapshot()
    await hostile.assert_untouched()
    assert await asyncio.to_thread(target.is_dir), f"fsck --prune of {attacker.wsid} deleted {target} (round {rounds})"
    assert signature(target) == before
