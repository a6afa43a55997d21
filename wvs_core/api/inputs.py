"""Reading requests: bodies, ids, query parameters and the Idempotency-Key, each strictly validated."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import attrs
from starlette.requests import ClientDisconnect, Request

from wvs_core import metrics
from wvs_core.api import state
from wvs_core.db.pagination import DEFAULT_LIMIT, MAX_LIMIT
from wvs_core.db.store import Submission
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.hashing import request_hash
from wvs_core.ids import is_uuid, is_wsid
from wvs_core.scope import EVERYTHING, Scope
from wvs_core.untrusted import UntrustedInputError, ascii_int, parse_json

MAX_KEY_LENGTH = 255


def bad_request(message: str) -> WVSError:
    """A WVS_BAD_REQUEST error."""
    return WVSError(ErrorCode.BAD_REQUEST, message)


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``), parsed under the rules of
    ``wvs_core.untrusted`` (depth, number range, duplicate keys, the string rule); anything else is a 400
    naming the problem: a body over ``api.max_body_bytes``, or not received within ``api.read_timeout``.
    Every route that takes a body reads it here."""
    limits = state.config(request).api
    declared = request.headers.get("content-length")
    if declared is not None and ascii_int(declared, 0, limits.max_body_bytes) is None:
        raise bad_request(f"body larger than {limits.max_body_bytes} bytes")
    raw = b""
    try:
        async with asyncio.timeout(limits.read_timeout):
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > limits.max_body_bytes:
                    raise bad_request(f"body larger than {limits.max_body_bytes} bytes")
    except TimeoutError:
        metrics.HTTP_STALLED.labels("body").inc()
        raise bad_request(f"body not received within {limits.read_timeout:g}s") from None
    except ClientDisconnect:  # nobody reads the answer, but it is an answer, not an unhandled error
        raise bad_request("the client went away before its body arrived") from None
    if not raw.strip():
        return {}
    try:
        body = parse_json(raw)
    except UntrustedInputError as error:
        raise bad_request(f"body: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def path_wsid(request: Request) -> str:
    """The ``{wsid}`` path parameter, validated."""
    wsid = request.path_params["wsid"]
    if not is_wsid(wsid):
        raise bad_request(f"invalid wsid {wsid!r}: must match ^[a-z0-9][a-z0-9-]{{1,61}}[a-z0-9]$")
    return str(wsid)


def path_id(request: Request, name: str) -> str:
    """A UUID path parameter (``task_id``, ``snapshot_id``), validated."""
    value = request.path_params[name]
    if not is_uuid(value):
        raise bad_request(f"invalid {name} {value!r}: must be a UUID")
    return str(value)


@attrs.frozen
class ListQuery:
    """Common list parameters plus the filters a route allows."""

    cursor: str | None
    limit: int
    filters: dict[str, str]


def list_query(request: Request, allowed_filters: tuple[str, ...] = (), repeatable: tuple[str, ...] = ()) -> ListQuery:
    """Parse ``cursor``, ``limit`` and the allowed filters; anything else is a 400, and so is a parameter given
    twice unless it is ``repeatable`` (the caller reads those with ``getlist``)."""
    params = request.query_params
    unknown = set(params) - {"cursor", "limit", *allowed_filters}
    if unknown:
        raise bad_request(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    names = [name for name, _value in params.multi_items() if name not in repeatable]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise bad_request(f"query parameter(s) given more than once: {', '.join(repeated)}")
    if empty := sorted(name for name, value in params.items() if not value):
        raise bad_request(f"empty query parameter(s): {', '.join(empty)} (leave them out instead)")
    limit = ascii_int(params.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT)
    if limit is None:
        raise bad_request(f"limit must be an integer from 1 to {MAX_LIMIT}, in ASCII digits")
    filters = {name: params[name] for name in allowed_filters if name in params}
    return ListQuery(cursor=params.get("cursor"), limit=limit, filters=filters)


def one_of(name: str, value: str | None, allowed: Iterable[str]) -> str | None:
    """``value`` when it is None or one of ``allowed``; otherwise a 400 listing the choices."""
    choices = sorted(allowed)
    if value is not None and value not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def submission(request: Request, body: dict[str, Any]) -> Submission:
    """Idempotency facts and the actor of an asynchronous write; the key is required."""
    key = request.headers.get("idempotency-key")
    if not key:
        raise bad_request("the Idempotency-Key header is required on this request")
    if len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise bad_request(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return Submission(
        idempotency_key=key,
        request_hash=request_hash(body, request.method, request.url.path),
        request_id=request.state.request_id,
        actor=actor(request),
    )


def scope(request: Request) -> Scope:
    """The workspaces the caller sees and acts on: its token's scope, or every one without auth."""
    principal = request.state.principal
    return EVERYTHING if principal is None else principal.scope


def actor(request: Request) -> dict[str, Any]:
    """Who made the request, for the audit trail: the token's subject, or anonymous without auth."""
    client = request.client
    principal = getattr(request.state, "principal", None)
    subject = principal.subject if principal is not None else "anonymous"
    return {"type": "api", "subject": subject, "remote": client.host if client else None}
