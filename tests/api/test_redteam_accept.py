"""Red team: the paths that create tasks, under concurrency, several owners and hostile input.

Each test is one attack on the API (real PostgreSQL, the API plane alone: nobody runs the tasks). A test that
fails is a finding; one that passes documents an attack that held.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import StartService, fresh_database, make_config
from tests.helpers import bearer, new_token
from wvs_core.db.engine import async_dsn, asyncpg_dsn
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.ids import uuid7
from wvs_core.plugins import PluginRegistry
from wvs_core.runtime import Service

OWNERS = ("alice", "bob", "carol")


class Attack:
    """The API as several token holders see it, plus SQL on its database."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str], database: str) -> None:
        self.client = client
        self.tokens = tokens
        self.database = database

    async def post(self, who: str, path: str, body: Any, key: str | None = None, **headers: str) -> httpx.Response:
        """POST ``body`` as ``who`` with an Idempotency-Key (``key`` or a fresh one)."""
        return await self.client.post(
            path, json=body, headers=bearer(self.tokens[who], **{"Idempotency-Key": key or uuid7()}, **headers)
        )

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        """Run one statement in its own transaction; its rows (if any)."""
        engine = create_async_engine(async_dsn(self.database))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    async def snapshot(self, wsid: str) -> str:
        """A snapshot row of ``wsid`` (no tree: nobody runs tasks here); its id."""
        snapshot_id = uuid7()
        await self.sql(
            "INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path) VALUES (:i, :w, '/x/' || :i)", i=snapshot_id, w=wsid
        )
        return snapshot_id

    async def workspace(self, who: str, wsid: str, state: str = "ACTIVE") -> None:
        """Create ``wsid`` for ``who`` and bring it to ``state`` as a worker would."""
        response = await self.post("admin", "/v1/workspaces", {"wsid": wsid, "owner": who})
        assert response.status_code == 202, response.text
        init_status = {"ACTIVE": "SUCCEEDED", "INIT_FAILED": "DEAD", "PROVISIONING": "PENDING", "DISABLED": "SUCCEEDED"}
        await self.sql("UPDATE wvs.tasks SET status = :s WHERE wsid = :w", s=init_status[state], w=wsid)
        await self.sql("UPDATE wvs.workspaces SET state = :s WHERE wsid = :w", s=state, w=wsid)


@pytest.fixture
async def attack(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[Attack]:
    """An API-only service (pool of 5, as the tests configure it) with a write token per owner and an admin."""
    tokens_file = tmp_path / "tokens.toml"
    tokens = {owner: new_token(tokens_file, owner, "write") for owner in OWNERS}
    tokens["admin"] = new_token(tokens_file, "ops", "admin")
    service = await start_service(
        make_config(database, tmp_path, api={"tokens_file": str(tokens_file)}), planes=("api",)
    )
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=60, limits=limits) as client:
        yield Attack(client, tokens, database)


@pytest.fixture(scope="module")
async def odd_input_attack(
    postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Attack]:
    """``attack``'s service, started once for the module's odd-input cases, with alice's ``alice-ws`` ACTIVE. Each
    case sends requests of its own (fresh Idempotency-Keys, or keys no other case sends) and asserts on their
    answers alone, so what the others left in the database changes none of its outcomes."""
    base = tmp_path_factory.mktemp("odd-input")
    tokens_file = base / "tokens.toml"
    tokens = {owner: new_token(tokens_file, owner, "write") for owner in OWNERS}
    tokens["admin"] = new_token(tokens_file, "ops", "admin")
    with fresh_database(postgres) as dsn:
        config = make_config(dsn, base, api={"tokens_file": str(tokens_file)})
        service = Service(config, PluginRegistry.load(config.plugins), planes=("api",), serve_metrics=False)
        await service.start()
        try:
            limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
            async with httpx.AsyncClient(base_url=service.api_url or "", timeout=60, limits=limits) as client:
                attack = Attack(client, tokens, dsn)
                await attack.workspace("alice", "alice-ws")
                yield attack
        finally:
            await service.stop()


HOLD = 2.0  # seconds the long transaction holds the slow workspace's row


async def _hold_row(database: str, wsid: str, held: asyncio.Event) -> None:
    """A transaction holding ``wsid``'s row for HOLD seconds (a long transaction: a slow task ending, a
    check); ``held`` is set once the row is held."""
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        await conn.execute("BEGIN")
        await conn.execute("SELECT 1 FROM wvs.workspaces WHERE wsid = $1 FOR UPDATE", wsid)
        held.set()
        await asyncio.sleep(HOLD)
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()


async def _other_workspace_while_held(attack: Attack, other: Any) -> tuple[float, Any, list[int]]:
    """Hold slow-ws's row, queue 30 snapshot requests for it, then time ``other()`` (a request about fast-ws);
    returns its latency, its answer (or the exception), and the 30 status codes."""
    await attack.workspace("alice", "slow-ws")
    await attack.workspace("bob", "fast-ws")
    held = asyncio.Event()
    holder = asyncio.create_task(_hold_row(attack.database, "slow-ws", held))
    await held.wait()
    stuck = [
        asyncio.create_task(attack.post("alice", "/v1/workspaces/slow-ws/snapshots", {"message": str(n)}))
        for n in range(30)
    ]
    await asyncio.sleep(0.5)  # every one of them is waiting for the row
    started = time.monotonic()
    try:
        answer: Any = await other()
    except httpx.HTTPError as error:
        answer = error
    elapsed = time.monotonic() - started
    await holder
    codes = [a.status_code for a in await asyncio.gather(*stuck)]
    return elapsed, answer, codes


async def test_a_held_workspace_row_does_not_delay_accepts_for_other_workspaces(attack: Attack) -> None:
    """One workspace's row held by a long transaction (HOLD s), with 30 requests for it waiting: a snapshot
    request for ANOTHER owner's workspace must still be accepted within a few hundred ms."""
    elapsed, fast, codes = await _other_workspace_while_held(
        attack, lambda: attack.post("bob", "/v1/workspaces/fast-ws/snapshots", {"message": "fast"})
    )
    assert elapsed < 0.5, f"bob's accept on fast-ws took {elapsed:.2f}s (answer {fast}) while slow-ws's row was held"
    assert fast.status_code == 202, fast.text
    assert codes == [202] * 30


async def test_a_held_workspace_row_does_not_delay_reads_of_other_workspaces(attack: Attack) -> None:
    """Same as above, for a GET of another workspace (reads share the API's pool)."""
    elapsed, read, _codes = await _other_workspace_while_held(
        attack, lambda: attack.client.get("/v1/workspaces/fast-ws", headers=bearer(attack.tokens["bob"]))
    )
    assert elapsed < 0.5, f"bob's GET of fast-ws took {elapsed:.2f}s (answer {read}) while slow-ws's row was held"
    assert read.status_code == 200, read.text


async def test_identical_and_mismatched_requests_racing_create_one_task_per_key(attack: Attack) -> None:
    """300 concurrent POSTs over 3 owners' workspaces and 30 keys: per key 8 identical snapshot requests and 2
    with another body. Exactly one task per key, every identical answer names it, every other body is 409
    WVS_CONFLICT_IDEMPOTENT_MISMATCH, and every task has exactly one task.created event."""
    for owner in OWNERS:
        await attack.workspace(owner, f"{owner}-ws")
    jobs = []
    for n in range(30):
        owner = OWNERS[n % 3]
        key = f"race-{n}"
        for copy in range(10):
            body = {"message": "same"} if copy < 8 else {"message": f"other-{copy}"}
            jobs.append((owner, key, copy < 8, body))
    answers = await asyncio.gather(
        *(attack.post(owner, f"/v1/workspaces/{owner}-ws/snapshots", body, key=key) for owner, key, _, body in jobs)
    )
    by_key: dict[str, set[str]] = {}
    for n in range(30):
        mine = [(body, answer) for (_o, key, _i, body), answer in zip(jobs, answers, strict=True) if key == f"race-{n}"]
        winners = [(body, answer) for body, answer in mine if answer.status_code == 202]
        assert winners and len({str(body) for body, _a in winners}) == 1, [a.text for _b, a in mine]
        by_key[f"race-{n}"] = {answer.json()["task_id"] for _b, answer in winners}
        for body, answer in mine:
            if body != winners[0][0]:
                assert answer.json()["error"]["code"] == "WVS_CONFLICT_IDEMPOTENT_MISMATCH", answer.text
    rows = await attack.sql(
        "SELECT t.idempotency_key, t.task_id, (SELECT count(*) FROM wvs.audit a WHERE a.task_id = t.task_id"
        " AND a.action = 'task.created') AS events FROM wvs.tasks t WHERE t.op = 'snapshot_create'"
    )
    assert Counter(row.idempotency_key for row in rows) == Counter({f"race-{n}": 1 for n in range(30)})
    assert {row.idempotency_key: {row.task_id} for row in rows} == by_key
    assert all(row.events == 1 for row in rows), rows


async def test_mismatch_racing_first_never_yields_two_tasks_or_a_500(attack: Attack) -> None:
    """Pairs of requests with one key and different bodies sent at the same instant, 100 keys: one is 202,
    the other 409 mismatch, one task per key."""
    await attack.workspace("alice", "alice-ws")
    pairs = [
        (
            attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": "a"}, key=f"pair-{n}"),
            attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": "b"}, key=f"pair-{n}"),
        )
        for n in range(100)
    ]
    answers = await asyncio.gather(*(coro for pair in pairs for coro in pair))
    for n in range(100):
        codes = sorted(answer.status_code for answer in answers[2 * n : 2 * n + 2])
        assert codes == [202, 409], [a.text for a in answers[2 * n : 2 * n + 2]]
    (count,) = await attack.sql(
        "SELECT count(*) AS n FROM wvs.tasks WHERE wsid = 'alice-ws' AND op <> 'init_workspace'"
    )
    assert count.n == 100


async def test_owner_scoped_tokens_racing_each_other_never_cross(attack: Attack) -> None:
    """alice and bob hammer each other's and their own workspaces at once, through every task-creating route
    they can name: each of their requests on the other's workspace is 404 WVS_NOT_FOUND (as for a missing
    one), and no task or event appears in a workspace its owner did not ask for."""
    await attack.workspace("alice", "alice-ws")
    await attack.workspace("bob", "bob-ws")
    snapshot_id = await attack.snapshot("alice-ws")
    alice_snapshot = snapshot_id

    def routes(wsid: str) -> list[tuple[str, Any]]:
        return [
            (f"/v1/workspaces/{wsid}/snapshots", {"message": "m"}),
            (f"/v1/workspaces/{wsid}/tasks", {"op": "snapshot_create", "params": {"message": "m"}}),
            (f"/v1/workspaces/{wsid}/current:set", {"snapshot_id": alice_snapshot}),
            (f"/v1/workspaces/{wsid}/current:restore", {"snapshot_id": alice_snapshot, "paths": ["a"]}),
            (f"/v1/workspaces/{wsid}/snapshots/{alice_snapshot}:fork", {"wsid": f"fork-{uuid7()[-12:]}"}),
            (f"/v1/workspaces/{wsid}/retry-init", {}),
        ]

    jobs = []
    for n in range(40):
        for who, wsid in (("bob", "alice-ws"), ("alice", "bob-ws"), ("alice", "alice-ws"), ("bob", "bob-ws")):
            path, body = routes(wsid)[n % 6]
            jobs.append((who, wsid, path, body))
    answers = await asyncio.gather(*(attack.post(who, path, body) for who, _wsid, path, body in jobs))
    for (who, wsid, path, _body), answer in zip(jobs, answers, strict=True):
        assert answer.status_code < 500, (path, answer.text)
        if not wsid.startswith(who):
            assert answer.status_code == 404, (who, path, answer.text)
            assert answer.json()["error"]["code"] == "WVS_NOT_FOUND"
    strangers = await attack.sql(
        "SELECT t.wsid, t.actor->>'subject' AS subject, w.owner FROM wvs.tasks t JOIN wvs.workspaces w USING (wsid)"
        " WHERE t.actor->>'subject' <> w.owner AND t.actor->>'subject' <> 'ops'"
    )
    assert strangers == []
    forks = await attack.sql("SELECT wsid, owner FROM wvs.workspaces WHERE wsid LIKE 'fork-%' AND owner <> 'alice'")
    assert forks == []


async def test_states_mixed_concurrently_get_their_own_codes(attack: Attack) -> None:
    """Requests for missing, DISABLED, PROVISIONING, INIT_FAILED and ACTIVE workspaces, shuffled and sent at
    once (in the same accept batches): 404, 410, 412, 412 and 202 each, every time."""
    expected = {"active-ws": 202, "disabled-ws": 410, "prov-ws": 412, "failed-ws": 412, "missing-ws": 404}
    await attack.workspace("alice", "active-ws")
    await attack.workspace("alice", "disabled-ws", "DISABLED")
    await attack.workspace("alice", "prov-ws", "PROVISIONING")
    await attack.workspace("alice", "failed-ws", "INIT_FAILED")
    await attack.workspace("bob", "bobs-ws")
    wsids = [*expected, "bobs-ws"] * 50
    answers = await asyncio.gather(
        *(attack.post("alice", f"/v1/workspaces/{wsid}/snapshots", {"message": "m"}) for wsid in wsids)
    )
    got = Counter((wsid, answer.status_code) for wsid, answer in zip(wsids, answers, strict=True))
    want = Counter({(wsid, code): 50 for wsid, code in {**expected, "bobs-ws": 404}.items()})
    assert got == want


async def test_a_sequential_clients_tasks_keep_its_order_under_load(attack: Attack) -> None:
    """alice sends 30 requests to her workspace one after another (each after the previous answer), mixing
    the batched route and routes that check first, while bob and carol flood the API: her tasks' queue
    order ``(created_at, task_id)`` and their task.created events follow her order."""
    await attack.workspace("alice", "alice-ws")
    await attack.workspace("bob", "bob-ws")
    await attack.workspace("carol", "carol-ws")
    snapshot_id = await attack.snapshot("alice-ws")
    stop = asyncio.Event()

    async def flood(who: str) -> None:
        while not stop.is_set():
            await asyncio.gather(
                *(attack.post(who, f"/v1/workspaces/{who}-ws/snapshots", {"message": "f"}) for _ in range(20))
            )

    flooders = [asyncio.create_task(flood(who)) for who in ("bob", "carol")]
    sent: list[str] = []
    try:
        for n in range(30):
            if n % 3 == 2:
                answer = await attack.post("alice", "/v1/workspaces/alice-ws/current:set", {"snapshot_id": snapshot_id})
            else:
                answer = await attack.post("alice", "/v1/workspaces/alice-ws/snapshots", {"message": str(n)})
            assert answer.status_code == 202, answer.text
            sent.append(answer.json()["task_id"])
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    queued = await attack.sql(
        "SELECT task_id FROM wvs.tasks WHERE wsid = 'alice-ws' AND op <> 'init_workspace' ORDER BY created_at, task_id"
    )
    assert [row.task_id for row in queued] == sent
    events = await attack.sql(
        "SELECT task_id FROM wvs.audit WHERE wsid = 'alice-ws' AND action = 'task.created' AND task_id = ANY(:ids)"
        " ORDER BY event_id",
        ids=sent,
    )
    assert [row.task_id for row in events] == sent


@pytest.mark.parametrize(
    "params",
    [
        {"message": "nul \u0000 inside"},
        {"message": "lone \ud800 surrogate"},
        {"message": "x" * 300_000},
        {"message": 10**400},
        {"message": "m", "labels": {"k": "\u0000"}},
        {"message": "m", "labels": {"k": {"deep": [[[[[[[[[[[[]]]]]]]]]]]]}}},
        {"message": "m", "labels": dict.fromkeys([f"k{n}" for n in range(1000)], "v")},
        {"message": "\U0001f600" * 1000, "labels": {"emoji": "\U0001f600"}},
    ],
    ids=["nul", "surrogate", "huge", "bignum", "label-nul", "label-nested", "many-labels", "astral"],
)
async def test_odd_params_in_a_busy_batch_answer_a_clean_4xx_and_spare_the_batch(
    odd_input_attack: Attack, params: Any
) -> None:
    """An odd body sent amid 50 valid ones (so in the same accept batch): the odd one gets a clean 4xx (or,
    for a valid odd body, a 202) in the envelope, the valid ones 202."""
    attack = odd_input_attack

    def raw(body: Any) -> bytes:
        return json.dumps(body, ensure_ascii=True).encode()

    async def send(content: bytes) -> httpx.Response:
        return await attack.client.post(
            "/v1/workspaces/alice-ws/tasks",
            content=content,
            headers=bearer(attack.tokens["alice"], **{"Idempotency-Key": uuid7(), "Content-Type": "application/json"}),
        )

    odd = raw({"op": "snapshot_create", "params": params})
    answers = await asyncio.gather(
        *(send(raw({"op": "snapshot_create", "params": {"message": str(n)}})) for n in range(25)),
        send(odd),
        *(send(raw({"op": "snapshot_create", "params": {"message": str(n)}})) for n in range(25)),
    )
    odd_answer = answers[25]
    assert odd_answer.status_code in (202, 400), odd_answer.text
    if odd_answer.status_code == 400:
        assert odd_answer.json()["error"]["code"] == "WVS_BAD_REQUEST"
    assert [a.status_code for a in answers[:25] + answers[26:]] == [202] * 50


@pytest.mark.parametrize(
    "key",
    ["a" * 255, "ключ", "k\x7f", "k\ty", "%00", "k;v,w", "a" * 256, "k\xff"],
    ids=["max", "cyrillic", "del", "tab", "pct00", "separators", "too-long", "latin1"],
)
async def test_odd_idempotency_keys(odd_input_attack: Attack, key: str) -> None:
    """Odd keys: a clean 400 or a 202 that a replay answers with the same task."""
    attack = odd_input_attack
    headers = bearer(attack.tokens["alice"])
    raw_headers = [
        (b"authorization", headers["Authorization"].encode()),
        (b"idempotency-key", key.encode("utf-8" if key.isascii() or "\xff" not in key else "latin-1")),
    ]
    first = await attack.client.post("/v1/workspaces/alice-ws/snapshots", json={"message": "k"}, headers=raw_headers)
    assert first.status_code in (202, 400), first.text
    if first.status_code == 202:
        again = await attack.client.post(
            "/v1/workspaces/alice-ws/snapshots", json={"message": "k"}, headers=raw_headers
        )
        assert again.status_code == 202 and again.json()["task_id"] == first.json()["task_id"], again.text
    else:
        assert first.json()["error"]["code"] == "WVS_BAD_REQUEST"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/workspaces/%61lice-ws/snapshots",
        "/v1/workspaces/ALICE-WS/snapshots",
        "/v1/workspaces/alice-ws%2Fsnapshots",
        "/v1/workspaces/alice-ws/snapshots/",
        "//v1/workspaces/alice-ws/snapshots",
        "/v1/workspaces/alice-ws/./snapshots",
        "/v1/workspaces/alice-ws%00/snapshots",
        "/v1/workspaces/" + "a" * 5000 + "/snapshots",
        "/v1/workspaces/alice-ws/snapshots?x=%ff%fe",
    ],
)
async def test_odd_wsids_and_paths(odd_input_attack: Attack, path: str) -> None:
    """Odd wsids and path spellings answer 202 (the same workspace) or a clean 4xx envelope, never a 5xx."""
    attack = odd_input_attack
    answer = await attack.post("alice", path, {"message": "p"})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert "error" in answer.json(), answer.text


async def test_concurrent_identical_workspace_creations_and_forks(attack: Attack) -> None:
    """50 identical creations of one wsid, 50 creations of another wsid by two owners racing, and 50
    identical forks, at once: one workspace and one init task per wsid, identical requests answer the same
    init task, the other owner's 409 WVS_CONFLICT_EXISTS."""
    await attack.workspace("alice", "alice-ws")
    snapshot_id = await attack.snapshot("alice-ws")
    fork_path = f"/v1/workspaces/alice-ws/snapshots/{snapshot_id}:fork"
    jobs = (
        [("alice", "/v1/workspaces", {"wsid": "new-ws"}, "k-new")] * 50
        + [("alice", "/v1/workspaces", {"wsid": "contested"}, "k-c")] * 25
        + [("bob", "/v1/workspaces", {"wsid": "contested"}, "k-c")] * 25
        + [("alice", fork_path, {"wsid": "forked"}, "k-f")] * 50
    )
    answers = await asyncio.gather(*(attack.post(who, path, body, key=key) for who, path, body, key in jobs))
    assert all(a.status_code in (202, 409) for a in answers), [
        a.text for a in answers if a.status_code not in (202, 409)
    ]
    for wsid in ("new-ws", "forked"):
        ids = {
            a.json()["init_task_id"] for (_, _, body, _), a in zip(jobs, answers, strict=True) if body["wsid"] == wsid
        }
        assert len(ids) == 1, ids
    contested = Counter(
        (who, a.status_code) for (who, _, body, _), a in zip(jobs, answers, strict=True) if body["wsid"] == "contested"
    )
    assert sorted(contested.values()) == [25, 25] and len(contested) == 2, contested
    rows = await attack.sql(
        "SELECT wsid, count(*) AS n FROM wvs.tasks WHERE wsid IN ('new-ws', 'contested', 'forked') GROUP BY wsid"
    )
    assert {row.wsid: row.n for row in rows} == {"new-ws": 1, "contested": 1, "forked": 1}


def _post_bytes(path: str, token: str, key: str, body: bytes, chunked: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n"
    head += "Content-Type: application/json\r\n"
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        payload = b"".join(f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + payload
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_answers(reader: asyncio.StreamReader, count: int) -> list[tuple[int, dict[str, Any]]]:
    answers = []
    for _ in range(count):
        status_line = await asyncio.wait_for(reader.readline(), 30)
        status = int(status_line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answers.append((status, json.loads(await reader.readexactly(length))))
    return answers


async def test_pipelined_posts_each_get_their_own_answer_in_order(attack: Attack) -> None:
    """100 snapshot POSTs pipelined on one connection (alternating Content-Length and chunked bodies with
    chunk extensions), then the same 100 again as replays: 200 answers in order, each 202, the replays
    naming the task of their first, and exactly 100 tasks."""
    await attack.workspace("alice", "alice-ws")
    url = httpx.URL(str(attack.client.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    token = attack.tokens["alice"]
    keys = [f"pipe-{n}" for n in range(100)]
    data = b"".join(
        _post_bytes("/v1/workspaces/alice-ws/snapshots", token, k, b'{"message": "%d"}' % (n % 100), chunked=n % 2 == 1)
        for n, k in enumerate(keys * 2)
    )
    writer.write(data)
    await writer.drain()
    try:
        answers = await _read_answers(reader, 200)
    finally:
        writer.close()
    assert [status for status, _ in answers] == [202] * 200, [a for a in answers if a[0] != 202][:3]
    first, replays = answers[:100], answers[100:]
    assert [a["task_id"] for _, a in first] == [a["task_id"] for _, a in replays]
    (count,) = await attack.sql(
        "SELECT count(*) AS n FROM wvs.tasks WHERE wsid = 'alice-ws' AND op = 'snapshot_create'"
    )
    assert count.n == 100


async def test_clients_that_vanish_after_sending_lose_no_task_and_break_nothing(attack: Attack) -> None:
    """200 clients send a task-creating POST (batched and checked routes) and close at once, without reading:
    every replay afterwards finds exactly the task its key made (or makes it), the API answers promptly, and
    each key holds one task."""
    await attack.workspace("alice", "alice-ws")
    snapshot_id = await attack.snapshot("alice-ws")
    url = httpx.URL(str(attack.client.base_url))
    token = attack.tokens["alice"]
    routes = [
        ("/v1/workspaces/alice-ws/snapshots", b'{"message": "gone"}'),
        ("/v1/workspaces/alice-ws/current:set", b'{"snapshot_id": "%s"}' % snapshot_id.encode()),
    ]

    async def vanish(n: int) -> None:
        _reader, writer = await asyncio.open_connection(url.host, url.port)
        path, body = routes[n % 2]
        writer.write(_post_bytes(path, token, f"gone-{n}", body))
        await writer.drain()
        writer.close()

    await asyncio.gather(*(vanish(n) for n in range(200)))
    started = time.monotonic()
    replays = await asyncio.gather(
        *(
            attack.client.post(
                routes[n % 2][0],
                content=routes[n % 2][1],
                headers=bearer(token, **{"Idempotency-Key": f"gone-{n}", "Content-Type": "application/json"}),
            )
            for n in range(200)
        )
    )
    elapsed = time.monotonic() - started
    assert [r.status_code for r in replays] == [202] * 200, [r.text for r in replays if r.status_code != 202][:3]
    rows = await attack.sql(
        "SELECT idempotency_key, count(*) AS n FROM wvs.tasks WHERE idempotency_key LIKE 'gone-%' GROUP BY 1"
    )
    assert len(rows) == 200 and all(row.n == 1 for row in rows)
    assert elapsed < 10, elapsed
