"""``GET /v1/events``: oldest first after ``after``, page by page, owner-scoped like every list; strict input."""

from __future__ import annotations

from tests.api.test_ownership import Callers, api  # noqa: F401 - the fixture

EVERY_WORKSPACE = {"alice-1": "alice", "bob-1": "bob", "alice-2": "alice", "team-1": "carol"}


async def test_paging_after_and_owner_scope(api: Callers) -> None:  # noqa: F811
    for wsid, who in EVERY_WORKSPACE.items():
        await api.create(who, wsid)
    canceled = (await api.create("alice", "alice-3"))["init_task_id"]
    assert (await api("alice", "POST", f"/v1/tasks/{canceled}:cancel")).status_code == 200

    everything = await api.every_page("admin", "/v1/events", limit=3)
    assert [(e["wsid"], e["type"]) for e in everything] == [
        *((wsid, kind) for wsid in EVERY_WORKSPACE for kind in ("workspace.created", "task.created")),
        *(
            ("alice-3", kind)
            for kind in ("workspace.created", "task.created", "task.canceled", "workspace.init_failed")
        ),
    ]
    ids = [e["event_id"] for e in everything]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first = everything[0]
    assert set(first) == {"event_id", "type", "ts", "wsid", "task_id", "actor", "request_id", "data", "deliveries"}
    assert first["actor"]["subject"] == "alice" and first["data"]["after"]["owner"] == "alice"
    assert first["deliveries"] == [], "no dispatcher has run against this database"

    after = ids[3]
    rest = (await api("admin", "GET", f"/v1/events?after={after}&limit=100")).json()
    assert [e["event_id"] for e in rest["items"]] == ids[4:] and rest["next_cursor"] is None
    assert (await api("admin", "GET", f"/v1/events?after={ids[-1]}")).json() == {"items": [], "next_cursor": None}

    alices = await api.every_page("alice", "/v1/events", limit=2)
    assert {e["wsid"] for e in alices} == {"alice-1", "alice-2", "alice-3"}
    assert alices == await api.every_page("alice-reader", "/v1/events", limit=5)
    assert [e["event_id"] for e in alices] == [e["event_id"] for e in everything if e["wsid"].startswith("alice")]
    carols = await api.every_page("carol", "/v1/events", limit=100)
    assert {e["wsid"] for e in carols} == {"team-1"}, "a workspace created for another owner the token acts for"
    one = await api.every_page("alice", "/v1/events?wsid=alice-2", limit=100)
    assert [e["type"] for e in one] == ["workspace.created", "task.created"]
    for other in ("bob-1", "no-such-ws"):
        hidden = await api("alice", "GET", f"/v1/events?wsid={other}")  # another owner's, or a typo: not an empty log
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "WVS_NOT_FOUND", other
    assert len(await api.every_page("bob", f"/v1/events?after={ids[0]}", limit=100)) == 2


async def test_bad_queries_are_400(api: Callers) -> None:  # noqa: F811
    for query in (
        "after=-1",
        "after=abc",
        "after=\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, not an ASCII one
        "after=1234567890123456789",
        "after=1&cursor=2",
        "cursor=xyz",
        "wsid=Not_A_Wsid",
        "limit=0",
        "limit=101",
        "since=1",
        "after=",
    ):
        response = await api("admin", "GET", f"/v1/events?{query}")
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"
