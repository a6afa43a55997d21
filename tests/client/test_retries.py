"""Retries: an asynchronous write refused by a proxy (503) is sent again with the same Idempotency-Key and
X-Request-Id, and WVS creates one task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from wvs_client import Client, WvsError


class FlakyProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``, but answers 503 to the first ``refuse`` requests; records each request's
    (method, path, Idempotency-Key, X-Request-Id)."""

    def __init__(self, upstream: str, refuse: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.refuse = refuse
        self.seen: list[tuple[str, str, str | None, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyProxy

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(
            (self.command, self.path, self.headers.get("Idempotency-Key"), self.headers.get("X-Request-Id"))
        )
        if self.server.refuse > 0:
            self.server.refuse -= 1
            status, content, kind = 503, b"<html>busy</html>", "text/html"
        else:
            headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
            answer = httpx.request(self.command, self.server.upstream + self.path, content=body, headers=headers)
            status, content, kind = answer.status_code, answer.content, answer.headers.get("content-type", "")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_DELETE = do_PUT = _forward


@pytest.fixture
def proxy(wvs) -> Iterator[FlakyProxy]:
    server = FlakyProxy(str(wvs.base_url).rstrip("/"), refuse=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_a_refused_write_is_sent_again_with_the_same_key(wvs, proxy: FlakyProxy) -> None:
    proxy.refuse = 2

    def create() -> str:
        with Client(proxy.url, backoff=0.01) as client:
            return client.create_workspace("sdk-retry", owner="programs").init_task_id

    task_id = await asyncio.to_thread(create)
    posts = [seen for seen in proxy.seen if seen[0] == "POST"]
    assert len(posts) == 3, "refused twice, then through"
    assert len({key for _, _, key, _ in posts}) == 1 and posts[0][2], "one Idempotency-Key for the call"
    assert len({request_id for *_, request_id in posts}) == 1, "one X-Request-Id for the call"
    tasks = (await wvs.get("/v1/tasks", params={"wsid": "sdk-retry"})).json()["items"]
    assert [task["task_id"] for task in tasks] == [task_id]
    assert tasks[0]["idempotency_key"] == posts[0][2]


async def test_retries_are_bounded(wvs, proxy: FlakyProxy) -> None:
    proxy.refuse = 10

    def create() -> WvsError:
        with Client(proxy.url, retries=2, backoff=0.01) as client:
            with pytest.raises(WvsError) as raised:
                client.create_workspace("sdk-bounded", owner="programs")
            return raised.value

    error = await asyncio.to_thread(create)
    assert error.status == 503 and error.code == "HTTP_503"
    assert len(proxy.seen) == 3, "the first try and two retries"


async def test_a_cancel_is_not_sent_twice(wvs, proxy: FlakyProxy) -> None:
    proxy.refuse = 1

    def cancel() -> WvsError:
        with Client(proxy.url, backoff=0.01) as client, pytest.raises(WvsError) as raised:
            client.cancel_task("01a21e96-ed6a-7531-a909-a04f53b8d655")
        return raised.value

    assert (await asyncio.to_thread(cancel)).status == 503
    assert len(proxy.seen) == 1, "a second cancel of a canceled task would be a 409, so it is not repeated"
