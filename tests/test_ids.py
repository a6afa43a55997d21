"""Ids and request hashing."""

from __future__ import annotations

import uuid

from wvs_core.hashing import request_hash, sorted_json
from wvs_core.ids import is_uuid, is_wsid, uuid7


def test_uuid7_is_version_7_and_sorts_in_creation_order() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert all(is_uuid(value) for value in ids)


def test_wsid_rule() -> None:
    assert is_wsid("ab-1") and is_wsid("a" * 63)
    for bad in ("a", "-ab", "ab-", "AB", "a_b", "a" * 64, "ab/../c", "", None, 12):
        assert not is_wsid(bad), bad


def test_request_hash_ignores_key_order_and_whitespace_but_not_method_or_path() -> None:
    assert sorted_json({"b": {"y": 1, "x": [2, {"d": 1, "c": 2}]}, "a": None}) == (
        '{"a":null,"b":{"x":[2,{"c":2,"d":1}],"y":1}}'
    )
    body = {"wsid": "ab-1", "owner": "me"}
    same = {"owner": "me", "wsid": "ab-1"}
    assert request_hash(body, "POST", "/v1/workspaces") == request_hash(same, "post", "/v1/workspaces")
    assert request_hash(body, "POST", "/v1/workspaces") != request_hash(body, "PUT", "/v1/workspaces")
    assert request_hash(body, "POST", "/v1/workspaces") != request_hash(body, "POST", "/v1/other")
    assert request_hash(body, "POST", "/p") != request_hash({**body, "owner": "you"}, "POST", "/p")
