"""Red team: the write routes under contention (rows and tables another transaction holds), shutdown and a
database that drops the API's connections.

Each test is one attack on a real service over a real PostgreSQL. A test that fails is a finding; one that
passes documents an attack that held. docs/operations.md ("A workspace another transaction holds") is the
contract under test: a held workspace delays no other workspace's requests nor any read; its own requests are
answered once it is released, or 409 WVS_CONFLICT_LOCKED after 10 s with nothing written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from tests.api.test_redteam_accept import OWNERS, Attack
from tests.conftest import StartService, make_config
from tests.helpers import bearer, new_token
from wvs_core.db import lockwait
from wvs_core.db.engine import asyncpg_dsn
from wvs_core.ids import uuid7
from wvs_core.runtime import Service

Start = Callable[..., Awaitable[tuple[Attack, Service]]]


@pytest.fixture
async def open_attack(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[Start]:
    """Start a service (``planes``, config ``sections``) with a write token per owner and an admin; returns
    the ``Attack`` on it and the service. Clients are closed after the test."""
    clients: list[httpx.AsyncClient] = []

    async def start(planes: tuple[str, ...] = ("api",), **sections: dict[str, Any]) -> tuple[Attack, Service]:
        tokens_file = tmp_path / "tokens.toml"
        tokens = {owner: new_token(tokens_file, owner, "write") for owner in OWNERS}
        tokens["admin"] = new_token(tokens_file, "ops", "admin")
        api = {"tokens_file": str(tokens_file), **sections.pop("api", {})}
        config = make_config(database, tmp_path, "juicefs", api=api, **sections)
        service = await start_service(config, planes=planes)
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=1.0)
        client = httpx.AsyncClient(base_url=service.api_url or "", timeout=60, limits=limits)
        clients.append(client)
        return Attack(client, tokens, database), service

    yield start
    for client in clients:
        await client.aclose()


@pytest.fixture
async def attack(open_attack: Start) -> Attack:
    """The API plane alone (pool of 5): nobody runs the tasks."""
    found, _service = await open_attack()
    return found


class Hold:
    """A transaction on a connection of its own that ran ``statements`` and holds what they took until
    ``release()`` (or ``seconds`` after it took it)."""

    def __init__(self, database: str, *statements: str, seconds: float) -> None:
        self.database = database
        self.statements = statements
        self.seconds = seconds
        self.held = asyncio.Event()
        self.released_at = 0.0
        self._release = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Hold:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.held.wait(), 10)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release()
        assert self._task is not None
        await self._task

    def release(self) -> None:
        self._release.set()

    async def _run(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.database))
        try:
            await conn.execute("BEGIN")
            for statement in self.statements:
                await conn.execute(statement)
            self.held.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.seconds)
            await conn.execute("ROLLBACK")
            self.released_at = time.monotonic()
        finally:
            await conn.close()


def workspace_row(wsid: str) -> str:
    return f"SELECT 1 FROM wvs.workspaces WHERE wsid = '{wsid}' FOR UPDATE"


async def timed(request: Awaitable[httpx.Response]) -> tuple[float, httpx.Response]:
    """The answer and the monotonic time it arrived at."""
    answer = await request
    return time.monotonic(), answer


async def pending_task(attack: Attack, who: str, wsid: str) -> str:
    answer = await attack.post(who, f"/v1/workspaces/{wsid}/snapshots", {"message": "pending"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


class Routes:
    """Every write route of the brief, for one workspace: ``jobs(n)`` are (method, path, body, key) tuples."""

    def __init__(self, wsid: str, snapshot_id: str, droppable: list[str], task_id: str) -> None:
        self.wsid = wsid
        self.snapshot_id = snapshot_id
        self.droppable = droppable
        self.task_id = task_id

    def job(self, n: int) -> tuple[str, str, Any]:
        ws = f"/v1/workspaces/{self.wsid}"
        sid = self.snapshot_id
        choices: list[tuple[str, str, Any]] = [
            ("POST", f"{ws}/snapshots", {"message": f"m{n}"}),
            ("POST", f"{ws}/tasks", {"op": "snapshot_create", "params": {"message": f"t{n}"}}),
            ("POST", f"{ws}/current:set", {"snapshot_id": sid}),
            ("POST", f"{ws}/current:restore", {"snapshot_id": sid, "paths": ["a"]}),
            ("POST", f"{ws}/snapshots/{sid}:fork", {"wsid": f"fork-{uuid7()[-12:]}"}),
            ("DELETE", f"{ws}/snapshots/{self.droppable[n % len(self.droppable)]}", None),
            ("POST", f"{ws}/retry-init", {}),
            ("PUT", f"{ws}/retention", {"keep_last": 5 + n % 3}),
            ("DELETE", ws, None),
            ("POST", f"/v1/tasks/{self.task_id}:cancel", {}),
            ("POST", "/v1/workspaces", {"wsid": f"new-{uuid7()[-12:]}"}),
        ]
        return choices[n % len(choices)]


async def send(attack: Attack, who: str, method: str, path: str, body: Any, key: str | None = None) -> httpx.Response:
    headers = bearer(attack.tokens[who], **{"Idempotency-Key": key or uuid7()})
    if body is None:
        return await attack.client.request(method, path, headers=headers)
    return await attack.client.request(method, path, json=body, headers=headers)


async def routes_for(attack: Attack, who: str, wsid: str) -> Routes:
    """An ACTIVE workspace of ``who`` with a current snapshot, three droppable ones and a PENDING task."""
    await attack.workspace(who, wsid)
    current = await attack.snapshot(wsid)
    await attack.sql("UPDATE wvs.workspaces SET current_snapshot_id = :s WHERE wsid = :w", s=current, w=wsid)
    droppable = [await attack.snapshot(wsid) for _ in range(3)]
    return Routes(wsid, current, droppable, await pending_task(attack, who, wsid))


ALLOWED = {200, 202, 404, 409, 410, 412}


async def assert_consistent(attack: Attack, answers: list[httpx.Response]) -> None:
    """Every task a 202 named exists; every task has exactly one task.created event and every such event a
    task; nothing answered 5xx."""
    assert not [a.text for a in answers if a.status_code >= 500][:3]
    named = {a.json().get("task_id") or a.json().get("init_task_id") for a in answers if a.status_code == 202} - {None}
    tasks = {row.task_id for row in await attack.sql("SELECT task_id FROM wvs.tasks")}
    assert named <= tasks, sorted(named - tasks)[:5]
    events = Counter(
        row.task_id for row in await attack.sql("SELECT task_id FROM wvs.audit WHERE action = 'task.created'")
    )
    assert set(events) == tasks, set(events) ^ tasks
    assert set(events.values()) == {1}, [t for t, n in events.items() if n != 1][:5]


async def every_one_received(requests: list[asyncio.Task[Any]], timeout: float = 30.0) -> None:
    """Return once the service has taken in each of ``requests`` (sent meanwhile as tasks of this event loop,
    which the service shares; call it before awaiting anything else, so that none of them has run yet): each
    is answered or in flight in the service, where one waiting for a held row waits without running. Sending
    and taking them in is work the event loop does before it gets to a request sent after them: a fixed pause
    that a loaded machine outlasts leaves that request waiting behind the rest of it, timing the flood's
    arrival rather than the held row's effect."""
    before = in_flight()
    deadline = time.monotonic() + timeout
    while in_flight() - before + sum(request.done() for request in requests) < len(requests):
        assert time.monotonic() < deadline, f"{in_flight() - before:g} in flight after {timeout:g} s"
        await asyncio.sleep(0.02)


def in_flight() -> float:
    """Requests in flight in this process's services (``wvs_active_requests``)."""
    return REGISTRY.get_sample_value("wvs_active_requests") or 0.0


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


# --- a held workspace row amid a flood of every write route --------------------------------------------------


async def test_a_held_workspace_amid_a_flood_of_every_write_route(
    attack: Attack, caplog: pytest.LogCaptureFixture
) -> None:
    """alice-ws's row held (until the rest is answered, 8 s at most) while 220 requests of every write route go
    to it and 220 to bob-ws (and GETs): probes of bob-ws (a write and a read each) take < 0.5 s each while
    alice's wait, alice's are answered after the release; no 5xx, no error logged, tasks and task.created
    events match. (bob's own 220 writes go one after the other on his workspace's row, however long that
    takes: not what this measures.)"""
    alice = await routes_for(attack, "alice", "alice-ws")
    bob = await routes_for(attack, "bob", "bob-ws")
    caplog.set_level(logging.ERROR)
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=8.0) as hold:
        waiting = [asyncio.create_task(timed(send(attack, "alice", *alice.job(n)))) for n in range(220)]
        await every_one_received(waiting)
        probes = []
        for n in range(11):
            started = time.monotonic()
            answer = await send(attack, "bob", *bob.job(n))
            probes.append((time.monotonic() - started, answer.status_code, bob.job(n)[1]))
            read = await attack.client.get("/v1/workspaces/bob-ws", headers=bearer(attack.tokens["bob"]))
            assert read.status_code == 200
        others = await asyncio.gather(
            *(timed(send(attack, "bob", *bob.job(n))) for n in range(220)),
            *(
                timed(attack.client.get("/v1/tasks?wsid=alice-ws", headers=bearer(attack.tokens["alice"])))
                for _ in range(20)
            ),
        )
    mine = await asyncio.gather(*waiting)
    assert [p for p in probes if p[0] >= 0.5] == [], probes
    codes = Counter(a.status_code for _, a in mine + others)
    assert set(codes) <= ALLOWED, codes
    assert sum(1 for at, _ in mine if at < hold.released_at) <= 25, "alice's held requests answered early"
    await assert_consistent(attack, [a for _, a in mine + others])
    assert errors_logged(caplog) == []


async def test_a_hold_released_mid_flood(attack: Attack, caplog: pytest.LogCaptureFixture) -> None:
    """A flood of every write route for alice-ws and bob-ws, waves of 60 for 3 s, while alice-ws's row is
    held 0.5 s, released, then held again 1 s: every request answered, no 5xx, tasks and events match."""
    alice = await routes_for(attack, "alice", "alice-ws")
    bob = await routes_for(attack, "bob", "bob-ws")
    caplog.set_level(logging.ERROR)
    stop = asyncio.Event()
    answers: list[httpx.Response] = []

    async def flood() -> None:
        n = 0
        while not stop.is_set():
            wave = [send(attack, "alice", *alice.job(n + k)) for k in range(30)]
            wave += [send(attack, "bob", *bob.job(n + k)) for k in range(30)]
            answers.extend(await asyncio.gather(*wave))
            n += 30

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(0.3)
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=0.5):
        pass
    await asyncio.sleep(0.5)
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=1.0):
        pass
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(flooding, 30)
    assert len(answers) >= 120
    assert set(Counter(a.status_code for a in answers)) <= ALLOWED
    await assert_consistent(attack, answers)
    assert errors_logged(caplog) == []


async def test_a_hold_past_patience_answers_409_writes_nothing_and_the_retry_makes_one_task(
    attack: Attack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice-ws's row held past the patience (shortened here from 10 s to 2 s) while 5 requests of each write
    route on it wait: each answers 409 WVS_CONFLICT_LOCKED after ~2 s and nothing was written meanwhile; the
    same requests with the same keys after the release are answered, with exactly one task per key."""
    monkeypatch.setattr(lockwait, "LOCK_PATIENCE", 2.0)
    alice = await routes_for(attack, "alice", "alice-ws")
    jobs = [(*alice.job(n), f"late-{n}-{copy}") for n in range(9) for copy in range(5)]
    counts = "SELECT (SELECT count(*) FROM wvs.tasks) AS tasks, (SELECT count(*) FROM wvs.audit) AS audit"
    (before,) = await attack.sql(counts)
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=3.0):
        started = time.monotonic()
        answers = await asyncio.gather(*(send(attack, "alice", *job) for job in jobs))
        elapsed = time.monotonic() - started
        (during,) = await attack.sql(counts)
    assert 1.5 < elapsed < 3.0, elapsed
    assert {(a.status_code, a.json()["error"]["code"]) for a in answers} == {(409, "WVS_CONFLICT_LOCKED")}
    assert (during.tasks, during.audit) == (before.tasks, before.audit)
    again = await asyncio.gather(*(send(attack, "alice", *job) for job in jobs))
    by_key: dict[str, set[str]] = {}
    for job, answer in zip(jobs, again, strict=True):
        assert answer.status_code in (200, 202, 409, 412), answer.text
        if answer.status_code == 202:
            by_key.setdefault(job[3], set()).add(answer.json().get("task_id") or answer.json()["init_task_id"])
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    rows = await attack.sql(
        "SELECT idempotency_key, count(*) AS n FROM wvs.tasks WHERE idempotency_key LIKE 'late-%' GROUP BY 1"
    )
    assert {row.idempotency_key: row.n for row in rows} == dict.fromkeys(by_key, 1)


async def test_another_owners_held_workspace_answers_404_at_once(attack: Attack) -> None:
    """bob POSTs snapshots to alice's workspace while its row is held (2 s): it does not exist for him, so he
    gets 404 at once, exactly as for a wsid nobody has — not an answer delayed by alice's lock (which tells him
    it exists, and after 10 s of holding turns into 409 WVS_CONFLICT_LOCKED)."""
    await attack.workspace("alice", "alice-ws")
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=2.0):
        answers = {}
        for route in ("snapshots", "tasks", "current:set"):
            body: Any = {"message": "m"}
            if route == "tasks":
                body = {"op": "snapshot_create", "params": {}}
            elif route == "current:set":
                body = {"snapshot_id": uuid7()}
            for wsid in ("alice-ws", "nobodys-ws"):
                started = time.monotonic()
                answer = await attack.post("bob", f"/v1/workspaces/{wsid}/{route}", body)
                answers[(route, wsid)] = (answer.status_code, round(time.monotonic() - started, 2))
    slow = {where: got for where, got in answers.items() if got[0] != 404 or got[1] >= 0.5}
    assert slow == {}, f"(route, wsid) → (status, seconds): {answers}"


async def test_cancels_waiting_for_a_held_workspace_do_not_take_the_pool(attack: Attack) -> None:
    """40 cancels of a PENDING task of alice-ws wait while its row is held (3 s); meanwhile bob's snapshot
    requests and reads of bob-ws are answered in < 0.5 s each (docs/operations.md: a held workspace delays
    no other workspace's requests). A cancel records its event under the workspace's row lock, which it
    waits for inside PostgreSQL (lock_timeout 100 ms) holding a pooled connection each try."""
    await attack.workspace("alice", "alice-ws")
    await attack.workspace("bob", "bob-ws")
    task_id = await pending_task(attack, "alice", "alice-ws")
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=3.0):
        waiting = [asyncio.create_task(attack.post("alice", f"/v1/tasks/{task_id}:cancel", {})) for _ in range(40)]
        await every_one_received(waiting)
        probes = []
        for n in range(4):
            started = time.monotonic()
            accepted = await attack.post("bob", "/v1/workspaces/bob-ws/snapshots", {"message": str(n)})
            read = await attack.client.get("/v1/workspaces/bob-ws", headers=bearer(attack.tokens["bob"]))
            probes.append(round(time.monotonic() - started, 3))
            assert (accepted.status_code, read.status_code) == (202, 200)
    codes = Counter(answer.status_code for answer in await asyncio.gather(*waiting))
    assert codes == Counter({200: 1, 409: 39}), codes
    assert max(probes) < 0.5, f"bob's accept + read took {probes} s while alice's cancels waited"


# --- held task rows, snapshot rows, whole tables --------------------------------------------------------------


async def test_a_held_task_row_delays_only_its_own_cancel(attack: Attack, caplog: pytest.LogCaptureFixture) -> None:
    """A task's row held (until the others are answered, 8 s at most) while 50 cancels of it and 50 cancels of
    other tasks (of alice and bob) arrive: the others are answered before the release; the held one's after
    it, one 200 CANCELED and the rest 200 or 409; exactly one task.canceled event per task."""
    await attack.workspace("alice", "alice-ws")
    await attack.workspace("bob", "bob-ws")
    held = await pending_task(attack, "alice", "alice-ws")
    others = [await pending_task(attack, who, f"{who}-ws") for who in ("alice", "bob") for _ in range(25)]
    caplog.set_level(logging.ERROR)
    async with Hold(
        attack.database, f"SELECT 1 FROM wvs.tasks WHERE task_id = '{held}' FOR UPDATE", seconds=8.0
    ) as hold:
        waiting = [asyncio.create_task(timed(attack.post("alice", f"/v1/tasks/{held}:cancel", {}))) for _ in range(50)]
        await every_one_received(waiting)
        rest = await asyncio.gather(
            *(
                timed(attack.post("alice" if n < 25 else "bob", f"/v1/tasks/{t}:cancel", {}))
                for n, t in enumerate(others)
            )
        )
    mine = await asyncio.gather(*waiting)
    assert all(at < hold.released_at for at, _ in rest), "other tasks' cancels waited for the held task"
    assert [a.status_code for _, a in rest] == [200] * 50, [a.text for _, a in rest if a.status_code != 200][:3]
    assert Counter(a.status_code for _, a in mine) <= Counter({200: 50, 409: 50})
    canceled = await attack.sql(
        "SELECT task_id, count(*) AS n FROM wvs.audit WHERE action = 'task.canceled' GROUP BY 1"
    )
    assert {row.task_id: row.n for row in canceled} == dict.fromkeys([held, *others], 1)
    assert errors_logged(caplog) == []


async def test_a_held_snapshot_row_amid_drops_and_rollbacks(attack: Attack, caplog: pytest.LogCaptureFixture) -> None:
    """A snapshot's row held (FOR UPDATE) 1.5 s while drops, rollbacks, restores and forks naming it arrive:
    every one answered, none 5xx; tasks and events match."""
    alice = await routes_for(attack, "alice", "alice-ws")
    sid = alice.droppable[0]
    ws = "/v1/workspaces/alice-ws"
    jobs: list[tuple[str, str, Any]] = [
        ("DELETE", f"{ws}/snapshots/{sid}", None),
        ("POST", f"{ws}/current:set", {"snapshot_id": sid}),
        ("POST", f"{ws}/current:restore", {"snapshot_id": sid, "paths": ["x"]}),
        ("POST", f"{ws}/snapshots/{sid}:fork", {"wsid": "placeholder"}),
    ]
    caplog.set_level(logging.ERROR)
    statement = f"SELECT 1 FROM wvs.snapshots WHERE snapshot_id = '{sid}' FOR UPDATE"
    async with Hold(attack.database, statement, seconds=1.5):
        answers = await asyncio.gather(
            *(
                send(
                    attack,
                    "alice",
                    *(jobs[n % 4] if n % 4 != 3 else (*jobs[3][:2], {"wsid": f"fork-{n}"})),
                )
                for n in range(120)
            )
        )
    assert set(Counter(a.status_code for a in answers)) <= ALLOWED, Counter(a.status_code for a in answers)
    await assert_consistent(attack, answers)
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    "table,mode",
    [
        ("wvs.tasks", "EXCLUSIVE"),
        ("wvs.audit", "EXCLUSIVE"),
        ("wvs.workspaces", "EXCLUSIVE"),
        ("wvs.workspaces", "ACCESS EXCLUSIVE"),
        ("wvs.tasks", "ACCESS EXCLUSIVE"),
    ],
)
async def test_a_locked_table_while_writes_and_reads_arrive(
    attack: Attack, caplog: pytest.LogCaptureFixture, table: str, mode: str
) -> None:
    """``LOCK TABLE`` held 1 s (what an operator's migration, ``ALTER TABLE``, ``VACUUM FULL`` or a
    ``REINDEX`` takes) while every write route and reads arrive for two owners' workspaces: each request is
    answered — after the release, or with a clean retryable error — never a 500 WVS_INTERNAL 'internal error'
    with a traceback in the log; tasks and events match."""
    alice = await routes_for(attack, "alice", "alice-ws")
    bob = await routes_for(attack, "bob", "bob-ws")
    caplog.set_level(logging.ERROR)
    async with Hold(attack.database, f"LOCK TABLE {table} IN {mode} MODE", seconds=1.0):
        answers = await asyncio.gather(
            *(send(attack, "alice", *alice.job(n)) for n in range(44)),
            *(send(attack, "bob", *bob.job(n)) for n in range(44)),
            *(attack.client.get("/v1/workspaces/alice-ws", headers=bearer(attack.tokens["alice"])) for _ in range(10)),
            *(attack.client.get("/v1/tasks", headers=bearer(attack.tokens["bob"])) for _ in range(10)),
        )
    internal = [a.json()["error"]["message"] for a in answers if a.status_code >= 500]
    assert internal == [], Counter(internal)
    await assert_consistent(attack, answers)
    assert errors_logged(caplog) == []


# --- with the worker running ----------------------------------------------------------------------------------


async def wait_all_terminal(attack: Attack, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        rows = await attack.sql("SELECT task_id, wsid, op, status, started_at, created_at FROM wvs.tasks")
        if all(row.status in ("SUCCEEDED", "DEAD", "CANCELED") for row in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def test_with_the_worker_held_rows_keep_fifo_and_every_accepted_task_runs(
    open_attack: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole service (localfs, quiesce none). alice sends 25 snapshot requests one after another while her
    workspace row is held 0.3 s every 0.6 s and bob floods his: every accepted task ends SUCCEEDED (no lost
    wake-up), alice's tasks started in the order she sent them."""
    attack, _service = await open_attack(
        planes=("api", "worker", "executor"), plugins={"storage": "localfs", "quiesce": "none"}
    )
    for who in ("alice", "bob"):
        answer = await attack.post("admin", "/v1/workspaces", {"wsid": f"{who}-ws", "owner": who})
        assert answer.status_code == 202, answer.text
    rows = await wait_all_terminal(attack, 20)
    assert {row.status for row in rows} == {"SUCCEEDED"}, rows
    caplog.set_level(logging.ERROR)
    stop = asyncio.Event()
    flooded: list[httpx.Response] = []

    async def holder() -> None:
        while not stop.is_set():
            async with Hold(attack.database, workspace_row("alice-ws"), seconds=0.3):
                pass
            await asyncio.sleep(0.3)

    async def flood() -> None:
        while not stop.is_set():
            flooded.extend(
                await asyncio.gather(
                    *(attack.post("bob", "/v1/workspaces/bob-ws/snapshots", {"message": "b"}) for _ in range(10))
                )
            )

    background = [asyncio.create_task(holder()), asyncio.create_task(flood())]
    sent = []
    try:
        for n in range(25):
            answer = await attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": str(n)})
            assert answer.status_code == 202, answer.text
            sent.append(answer.json()["task_id"])
    finally:
        stop.set()
        await asyncio.gather(*background)
    assert {a.status_code for a in flooded} == {202}
    rows = await wait_all_terminal(attack, 30)
    assert Counter(row.status for row in rows) == Counter({"SUCCEEDED": len(rows)}), Counter(r.status for r in rows)
    started = [row.task_id for row in sorted(rows, key=lambda r: r.started_at) if row.task_id in set(sent)]
    assert started == sent
    assert errors_logged(caplog) == []


async def test_a_running_task_does_not_hold_up_accepts_for_its_workspace(open_attack: Start) -> None:
    """With the control-json quiesce and no agent answering, a snapshot task stays RUNNING ~3 s (the freeze
    timeout): meanwhile new requests for the same workspace are accepted at once (they only queue behind it)."""
    attack, _service = await open_attack(
        planes=("api", "worker", "executor"),
        plugins={"storage": "localfs", "quiesce": "control-json"},
        executor={"quiesce_timeout": "3s"},
    )
    answer = await attack.post("admin", "/v1/workspaces", {"wsid": "alice-ws", "owner": "alice"})
    assert answer.status_code == 202
    rows = await wait_all_terminal(attack, 20)
    assert {row.status for row in rows} == {"SUCCEEDED"}, rows
    first = await attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": "first"})
    assert first.status_code == 202
    deadline = time.monotonic() + 5
    while (
        await attack.client.get(f"/v1/tasks/{first.json()['task_id']}", headers=bearer(attack.tokens["alice"]))
    ).json()["status"] != "RUNNING":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    latencies = []
    for n in range(10):
        started = time.monotonic()
        answer = await attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": str(n)})
        latencies.append(round(time.monotonic() - started, 3))
        assert answer.status_code == 202, answer.text
    assert max(latencies) < 0.5, latencies


# --- shutdown -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shutdown_timeout", ["30s", "1s"])
async def test_shutdown_while_requests_wait_for_a_held_workspace(
    open_attack: Start, caplog: pytest.LogCaptureFixture, shutdown_timeout: str
) -> None:
    """40 requests of the write routes wait for alice-ws's row (held 3 s) when the API is asked to stop: each
    gets an answer (202 or a clean 4xx/5xx envelope, no dropped connection), and every 202 names a task that
    exists."""
    attack, service = await open_attack(api={"shutdown_timeout": shutdown_timeout})
    alice = await routes_for(attack, "alice", "alice-ws")
    caplog.set_level(logging.ERROR)
    async with Hold(attack.database, workspace_row("alice-ws"), seconds=3.0):
        waiting = [asyncio.create_task(send(attack, "alice", *alice.job(n % 6))) for n in range(40)]
        await every_one_received(waiting)
        stopping = asyncio.create_task(service.stop())
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    await stopping
    dropped = [repr(o) for o in outcomes if not isinstance(o, httpx.Response)]
    assert dropped == [], dropped[:3]
    answers = [o for o in outcomes if isinstance(o, httpx.Response)]
    for answer in answers:
        assert "error" in answer.json() or answer.status_code == 202, answer.text
    named = {a.json().get("task_id") or a.json().get("init_task_id") for a in answers if a.status_code == 202}
    tasks = {row.task_id for row in await attack.sql("SELECT task_id FROM wvs.tasks")}
    assert named - {None} <= tasks
    assert errors_logged(caplog) == []


# --- the database dropping the API's connections --------------------------------------------------------------


FLOOD = 300  # requests while the API's backends are killed


async def test_connections_killed_mid_flood(attack: Attack, caplog: pytest.LogCaptureFixture) -> None:
    """FLOOD requests (snapshots, tasks, current:set, creations; fixed keys) while every API backend is
    terminated 4 times: each answer is a 202 or the clean retryable 500 ('the database is unavailable; retry
    shortly', Retry-After); every 202 names a task that exists; the same requests again all answer 202 with one
    task per key; no traceback logged; the API answers reads at once afterwards."""
    alice = await routes_for(attack, "alice", "alice-ws")
    bob = await routes_for(attack, "bob", "bob-ws")
    jobs = []
    for n in range(FLOOD):
        who, routes = ("alice", alice) if n % 2 else ("bob", bob)
        job = routes.job(n % 3)
        if n % 10 == 9:
            job = ("POST", "/v1/workspaces", {"wsid": f"made-{n}"})
        jobs.append((who, *job, f"kill-{n}"))
    caplog.set_level(logging.ERROR)
    killer_conn = await asyncpg.connect(asyncpg_dsn(attack.database))

    async def kill() -> None:
        for _ in range(4):
            await asyncio.sleep(0.15)
            await killer_conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    try:
        killing = asyncio.create_task(kill())
        answers = await asyncio.gather(*(send(attack, who, m, p, b, k) for who, m, p, b, k in jobs))
        await killing
    finally:
        await killer_conn.close()
    unclean = [
        a.text
        for a in answers
        if a.status_code != 202
        and not (
            a.status_code == 500
            and a.json()["error"]["message"] == "the database is unavailable; retry shortly"
            and a.headers.get("retry-after") == "1"
        )
    ]
    assert unclean == [], Counter(unclean)
    first = {k: a for (_w, _m, _p, _b, k), a in zip(jobs, answers, strict=True) if a.status_code == 202}
    again = await asyncio.gather(*(send(attack, who, m, p, b, k) for who, m, p, b, k in jobs))
    assert Counter(a.status_code for a in again) == Counter({202: FLOOD}), [
        a.text for a in again if a.status_code != 202
    ][:3]
    for (_w, _m, _p, _b, k), answer in zip(jobs, again, strict=True):
        if k in first:
            ids = first[k].json().get("task_id") or first[k].json()["init_task_id"]
            assert ids == (answer.json().get("task_id") or answer.json()["init_task_id"])
    # The first flood's retryable 500s are allowed above; every task any 202 named must exist.
    await assert_consistent(attack, [a for a in answers if a.status_code == 202] + list(again))
    started = time.monotonic()
    assert (await attack.client.get("/v1/workspaces", headers=bearer(attack.tokens["alice"]))).status_code == 200
    assert time.monotonic() - started < 0.5
    assert errors_logged(caplog) == [], Counter(errors_logged(caplog))


# --- breadth --------------------------------------------------------------------------------------------------


WIDE = 400  # distinct workspaces at once: more than a batch (db/accept.py MAX_BATCH) holds


async def test_many_distinct_workspaces_at_once(attack: Attack, caplog: pytest.LogCaptureFixture) -> None:
    """WIDE workspace creations for three owners at once, then WIDE snapshot requests, one per workspace, at
    once (some by the wrong owner): every creation 202, each snapshot 202 for its owner and 404 for a stranger,
    one task.created event per task, no error logged. (How fast is `make bench`'s to say: a client in this
    process with hundreds of connections measures itself.)"""
    caplog.set_level(logging.ERROR)
    wsids = [f"w-{n:04d}" for n in range(WIDE)]
    owner = {wsid: OWNERS[n % 3] for n, wsid in enumerate(wsids)}
    made = await asyncio.gather(*(attack.post(owner[w], "/v1/workspaces", {"wsid": w}) for w in wsids))
    assert Counter(a.status_code for a in made) == Counter({202: WIDE}), [a.text for a in made if a.status_code != 202][
        :3
    ]
    await attack.sql("UPDATE wvs.tasks SET status = 'SUCCEEDED'")
    await attack.sql("UPDATE wvs.workspaces SET state = 'ACTIVE'")
    asker = {w: owner[w] if n % 7 else OWNERS[(n + 1) % 3] for n, w in enumerate(wsids)}
    answers = await asyncio.gather(
        *(attack.post(asker[w], f"/v1/workspaces/{w}/snapshots", {"message": w}) for w in wsids)
    )
    for wsid, answer in zip(wsids, answers, strict=True):
        assert answer.status_code == (202 if asker[wsid] == owner[wsid] else 404), answer.text
    await assert_consistent(attack, list(made) + list(answers))
    assert errors_logged(caplog) == []
