"""What ``Client`` and ``AsyncClient`` share about sending a ``Call``: where to (URL, token), the request, reading
the answer, and when to try again. Only the sending and the sleeping differ between the two."""

from __future__ import annotations

import os
import random
import uuid
from typing import Any, TypeVar

import attrs
import httpx

from wvs_client.calls import Call
from wvs_client.errors import WvsError, WvsUnreachable, error_from_answer

T = TypeVar("T")

DEFAULT_URL = "http://localhost:8080"
RETRIED_STATUSES = frozenset({502, 503, 504})  # a proxy or a restarting API; the request may be sent again


@attrs.frozen
class Connection:
    """Where the client talks to and how patiently.

    ``retries``: how many times a call is sent again after a connection failure or a 502/503/504 (a call not
    ``repeatable`` only when it never left); the waits between grow from ``backoff`` seconds, doubling, with
    jitter, at most ``max_backoff``. ``timeout``: seconds per request.
    """

    base_url: str
    token: str | None
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 4.0

    @classmethod
    def resolve(cls, base_url: str | None, token: str | None, **settings: Any) -> Connection:
        """``base_url``, else env ``WVS_API_URL``, else http://localhost:8080; ``token``, else env ``WVS_TOKEN``."""
        url = base_url or os.environ.get("WVS_API_URL") or DEFAULT_URL
        return cls(url.rstrip("/"), token or os.environ.get("WVS_TOKEN") or None, **settings)

    def headers(self) -> dict[str, str]:
        """The headers of every request."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any], request_id: str) -> httpx.Request:
        """The HTTP request of ``call``."""
        headers = {"X-Request-Id": request_id}
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return http.build_request(call.method, call.path, params=list(call.query), json=call.body, headers=headers)

    def delay(self, call: Call[Any], attempt: int, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before sending ``call`` again after ``attempt`` (0 the first) ended in ``outcome``;
        None: do not."""
        if attempt >= self.retries:
            return None
        if isinstance(outcome, httpx.Response):
            retry = outcome.status_code in RETRIED_STATUSES and call.repeatable
        else:
            retry = isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout) or (
                call.repeatable and isinstance(outcome, httpx.TransportError)
            )
        if not retry:
            return None
        return min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def unreachable(self, error: Exception) -> WvsUnreachable:
        """The exception for a request that got no answer (no request id: no server logged it)."""
        return WvsUnreachable(f"cannot reach WVS at {self.base_url}: {error or type(error).__name__}")


def new_request_id() -> str:
    """An ``X-Request-Id`` for one call (all its retries carry it: WVS's logs show them together)."""
    return str(uuid.uuid4())


def read_answer(call: Call[T], response: httpx.Response, request_id: str) -> T:
    """``call``'s result from ``response``; raises the ``WvsError`` subclass of its code when it is an error."""
    try:
        body: Any = response.text if call.text and response.is_success else response.json()
    except ValueError:
        body = None
    if response.is_error:
        raise error_from_answer(response.status_code, body, response.headers.get("x-request-id", request_id))
    if body is None:
        raise WvsError(
            f"HTTP {response.status_code} answer is not JSON",
            code=f"HTTP_{response.status_code}",
            status=response.status_code,
            request_id=request_id,
        )
    return call.read(body)
