"""The HTTP client behind ``wvsctl``: one place that turns error envelopes into CLI failures."""

from __future__ import annotations

import time
from typing import Any

import click
import httpx

from wvs_core.ids import uuid7

TERMINAL = {"SUCCEEDED", "DEAD", "CANCELED"}


class ApiError(click.ClickException):
    """An error answer from WVS, shown with its ``WVS_…`` code."""

    def __init__(self, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{code}: {message}" + (f" (request_id {request_id})" if request_id else ""))
        self.code = code


def send(http: httpx.Client, what: str, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
    """Send a request; returns the response and its JSON body (None when it is not JSON). An unreachable
    server (``what`` names it) is ApiError ``WVS_UNREACHABLE``."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise ApiError("WVS_UNREACHABLE", f"cannot reach {what} at {http.base_url}: {error}") from None
    try:
        return response, response.json()
    except ValueError:
        return response, None


class WvsClient:
    """Thin synchronous client for the ``/v1`` API."""

    def __init__(self, api_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.authenticated = bool(token)  # then the API knows who is calling (e.g. a new workspace's owner)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; raise ApiError for an error envelope or an unreachable API."""
        response, body = send(self._http, "WVS", method, path, **kwargs)
        if response.is_error:
            envelope = body.get("error", {}) if isinstance(body, dict) else {}
            raise ApiError(
                envelope.get("code", f"HTTP_{response.status_code}"),
                envelope.get("message", response.text[:200]),
                envelope.get("request_id", response.headers.get("x-request-id", "")),
            )
        return body

    def write(self, path: str, body: dict[str, Any], idempotency_key: str | None, method: str = "POST") -> Any:
        """Send an asynchronous write with an Idempotency-Key (a fresh one unless given)."""
        headers = {"Idempotency-Key": idempotency_key or uuid7()}
        return self.request(method, path, json=body if method == "POST" else None, headers=headers)

    def follow(self, task_id: str, on_change: Any, interval: float = 0.25) -> dict[str, Any]:
        """Poll a task until it ends, calling ``on_change(task, elapsed)`` whenever it changes."""
        started = time.monotonic()
        seen: tuple[Any, ...] | None = None
        while True:
            task = self.request("GET", f"/v1/tasks/{task_id}")
            state = (task["status"], task["attempt"])
            if state != seen:
                on_change(task, time.monotonic() - started)
                seen = state
            if task["status"] in TERMINAL:
                return dict(task)
            time.sleep(interval)
