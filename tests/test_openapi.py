"""The API keeps to its OpenAPI document (``/v1/openapi.yaml``): schemathesis sends every route documented
and undocumented input, and every answer must be documented — status, content type and body — with no 5xx
and every schema-violating request refused. Then every route, documented or not, gets what schemathesis never
generates (tests/hostile.py): hostile JSON bodies, query strings and headers, and must answer each without a
5xx, every error in the envelope with a WVS_ code and the request id."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.routing import Route

from tests.conftest import fresh_database
from tests.helpers import free_port, key
from tests.hostile import header_values, hostile_text, json_bodies, query_strings
from tests.metrics_stack import ROOT, running, wait_until
from wvs_core.api.app import create_app
from wvs_core.config import Config
from wvs_core.db.engine import async_dsn
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.errors import ErrorCode
from wvs_core.ids import uuid7

# Per operation and mode. Generation is derandomized so CI is repeatable; set WVS_FUZZ_EXAMPLES (and a
# random seed with --hypothesis-seed) to search further.
EXAMPLES = int(os.environ.get("WVS_FUZZ_EXAMPLES", "40"))
# Per route and mode of the hostile run (21 routes x 3 modes: well under a minute by default).
HOSTILE_EXAMPLES = int(os.environ.get("WVS_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = "WVS_FUZZ_EXAMPLES" not in os.environ
# What the API serves with the default plugins: the core routes and the routes of the ops they provide.
routes = [route for route in create_app(Config()).routes if isinstance(route, Route)]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_service(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The API plane alone in its own process, on a database of its own (tasks stay PENDING): its URL and
    the database's DSN."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path_factory.mktemp("openapi") / "wvs.toml"
    with fresh_database(postgres) as dsn:
        config.write_text(f'[database]\ndsn = "{dsn}"\n[api]\nlisten_addr = "127.0.0.1:{port}"\n')
        with running(sys.executable, "-m", "tests.service_process", str(config), "api", cwd=ROOT):
            wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="the API")
            yield url, dsn


@pytest.fixture(scope="module")
def api_url(api_service: tuple[str, str]) -> str:
    return api_service[0]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_answer_is_documented_and_no_input_breaks_the_api(api_url: str, mode: GenerationMode) -> None:
    """Positive: inputs the document allows; negative: inputs it forbids (each must be refused with a 4xx)."""
    schema = schemathesis.openapi.from_url(f"{api_url}/v1/openapi.yaml")
    operations = [result.ok() for result in schema.get_all_operations()]
    served = {(method, route.path) for route in routes for method in route.methods or () if method != "HEAD"}
    documented = {(operation.method.upper(), operation.path) for operation in operations}
    assert documented == {
        (method, path) for method, path in served if path.startswith("/v1/") and path != "/v1/openapi.yaml"
    }, "every /v1 route is documented, nothing else"
    for operation in operations:
        inputs = (operation.path_parameters, operation.query, operation.headers, operation.body)
        if mode == GenerationMode.NEGATIVE and not any(len(parameters) for parameters in inputs):
            continue  # takes nothing (GET /v1/ops): there is no input to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize="WVS_FUZZ_EXAMPLES" not in os.environ,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api_url, checks=CHECKS)

        answers_as_documented()


# --- hostile input on every route --------------------------------------------------------------------

MODES = ("json", "query", "everything")


async def _sql(dsn: str, *statements: tuple[str, dict[str, Any]]) -> None:
    engine = create_async_engine(async_dsn(dsn))
    try:
        async with engine.begin() as conn:
            for statement, values in statements:
                await conn.execute(sa.text(statement), values)
    finally:
        await engine.dispose()


FUZZ_WSID = "fuzz-ws"


def reset_workspace(dsn: str) -> None:
    """The fuzzed workspace ACTIVE again and its tasks PENDING (what one route did, say a cancel or a
    retry-init, must not keep the next one from getting past the state checks)."""
    asyncio.run(
        _sql(
            dsn,
            ("UPDATE wvs.workspaces SET state = 'ACTIVE' WHERE wsid = :w", {"w": FUZZ_WSID}),
            ("UPDATE wvs.tasks SET status = 'PENDING', cancel_requested = false WHERE wsid = :w", {"w": FUZZ_WSID}),
        )
    )


@pytest.fixture(scope="module")
def known_ids(api_service: tuple[str, str]) -> dict[str, str]:
    """Real ids for path parameters, so hostile input reaches past the lookups: a workspace (made ACTIVE in
    SQL: nobody runs its init task), a task of it and a live snapshot row."""
    url, dsn = api_service
    snapshot_id = uuid7()
    created = httpx.post(f"{url}/v1/workspaces", json={"wsid": FUZZ_WSID, "owner": "fuzz"}, headers=key())
    assert created.status_code == 202, created.text
    statement = "INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path) VALUES (:s, :w, '/ws/fuzz-ws/s')"
    asyncio.run(_sql(dsn, (statement, {"s": snapshot_id, "w": FUZZ_WSID})))
    return {"wsid": FUZZ_WSID, "task_id": created.json()["init_task_id"], "snapshot_id": snapshot_id}


def documented_names(url: str) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """(method, path) → (query parameter names, body field names) as the OpenAPI document has them."""
    document = yaml.safe_load(httpx.get(f"{url}/v1/openapi.yaml").text)

    names: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            parameters = [_deref(document, p) for p in [*item.get("parameters", []), *operation.get("parameters", [])]]
            query = [p["name"] for p in parameters if p["in"] == "query"]
            body = _deref(document, operation.get("requestBody", {}))
            schema = _deref(document, body.get("content", {}).get("application/json", {}).get("schema", {}))
            names[(method.upper(), path)] = (query, list(schema.get("properties", {})))
    return names


def _deref(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].split("/")[1:]:
            target = target[part]
        node = target
    return node


def assert_answered(response: httpx.Response, sent_request_id: bytes | None) -> None:
    """No 5xx; an error is the envelope with a WVS_ code and the request id, which the header echoes."""
    sent = response.request
    what = f"{sent.method} {sent.url.raw_path[:300]!r} body {sent.content[:300]!r} -> {response.text[:300]}"
    assert response.status_code < 500, what
    # Header values are bytes on the wire; the API reads and writes them as Latin-1.
    request_id = next((v.decode("latin-1") for k, v in response.headers.raw if k.lower() == b"x-request-id"), "")
    assert request_id, what
    if sent_request_id and 0 < len(sent_request_id) <= 128 and sent_request_id.decode("latin-1").isprintable():
        assert request_id == sent_request_id.decode("latin-1"), what
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json", what
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "request_id"}, what
        assert body["error"]["code"] in set(ErrorCode), what
        assert body["error"]["request_id"] == request_id, what
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    elif response.headers.get("content-type") == "application/json":
        response.json()


def fuzz_route(
    client: httpx.Client, route: tuple[str, str], mode: str, names: tuple[list[str], list[str]], ids: dict[str, str]
) -> int:
    """Send HOSTILE_EXAMPLES hostile requests of ``mode`` to ``route``; how many were sent."""
    method, path = route
    query_names, field_names = names
    hostile = mode == "everything"
    known = {name: st.just(ids.get(name, "x")) for name in re.findall(r"{(\w+)}", path)}
    path_values = {name: st.one_of(value, hostile_text(20)) for name, value in known.items()} if hostile else known
    keys = st.uuids().map(lambda uuid: str(uuid).encode())  # a fresh Idempotency-Key: no replays
    tried = 0

    @given(
        values=st.fixed_dictionaries(path_values),
        body=json_bodies(field_names) if mode != "query" else st.sampled_from([b"", b"{}"]),
        query=query_strings(query_names) if mode != "json" else st.just(b""),
        idempotency_key=st.one_of(keys, header_values()) if hostile else keys,
        request_id=st.one_of(st.none(), header_values()) if hostile else st.none(),
        content_type=st.sampled_from([b"application/json", b"text/plain", b"a/b; charset=\xff", None]),
    )
    @settings(
        max_examples=HOSTILE_EXAMPLES,
        derandomize=DERANDOMIZE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers(
        values: dict[str, str],
        body: bytes,
        query: bytes,
        idempotency_key: bytes,
        request_id: bytes | None,
        content_type: bytes | None,
    ) -> None:
        nonlocal tried
        tried += 1
        target = path
        for name, value in values.items():  # percent-encoded (NUL, surrogates, "/" and all) as a client must
            target = target.replace("{" + name + "}", quote_from_bytes(value.encode("utf-8", "surrogatepass"), ""))
        headers = {"Idempotency-Key": idempotency_key}
        if request_id is not None:
            headers["X-Request-Id"] = request_id
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = client.base_url.copy_with(raw_path=target.encode() + (b"?" + query if query else b""))
        assert_answered(client.request(method, url, content=body, headers=headers), request_id)

    answers()
    return tried


def test_hostile_input_on_every_route_never_breaks_the_api(
    api_service: tuple[str, str], known_ids: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every route the API serves, the ops' included (a new one is fuzzed without touching this test), in three modes:
    a hostile JSON body; a hostile query string; and everything hostile at once — path parameters, the
    Idempotency-Key, X-Request-Id and Content-Type headers, query and body."""
    api_url, dsn = api_service
    documented = documented_names(api_url)
    served = sorted({(method, route.path) for route in routes for method in route.methods or () if method != "HEAD"})
    tried: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for route in served:
            for mode in MODES:
                reset_workspace(dsn)
                tried[(f"{route[0]} {route[1]}", mode)] = fuzz_route(
                    client, route, mode, documented.get(route, ([], [])), known_ids
                )
    with capsys.disabled():
        print(f"\nhostile input: {sum(tried.values())} cases, {len(served)} routes x {len(MODES)} modes")
        for (route_name, mode), count in sorted(tried.items()):
            print(f"  {count:5d}  {mode:<10}  {route_name}")
    assert all(tried.values())
