"""A real HTTP endpoint on 127.0.0.1 for webhook tests: it records every POST and answers as told."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
from standardwebhooks.webhooks import Webhook


@attrs.frozen
class Received:
    """One POST as the endpoint got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def event(self) -> dict[str, Any]:
        """The body as JSON."""
        return dict(json.loads(self.body))

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers["webhook-id"]

    def verify(self, secret: str | bytes) -> dict[str, Any]:
        """Check the Standard Webhooks signature with the reference library; returns the event."""
        return dict(Webhook(secret).verify(self.body, self.headers))


Answer = Callable[[Received], tuple[int, float]]
"""Decides the status to answer a POST with, and how many seconds to wait before answering."""


class Receiver:
    """Records POSTs (``received``) and answers them with ``answer`` (default: 204 at once)."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda _received: (204, 0.0))
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.url = ""

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        """The events received (each delivery, duplicates included), in arrival order."""
        with self.lock:
            return [r.event for r in self.received if path is None or r.path == path]

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> None:
        """Until ``predicate(received)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if predicate(list(self.received)):
                    return
            ids = sorted(r.headers.get("webhook-id", "?") for r in self.received)
            assert time.monotonic() < deadline, f"the webhook endpoint got only these webhook-ids: {ids}"
            await asyncio.sleep(0.05)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender went away mid-request (a worker stopping): no request an endpoint acts on
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver.lock:
                    receiver.received.append(received)
                status, delay = receiver.answer(received)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender went away (timeout, or killed)

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Serve on 127.0.0.1 (a free port) in threads; ``url`` is its base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
