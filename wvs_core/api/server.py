"""The API's HTTP connections: uvicorn's httptools protocol (llhttp), with a deadline and a size bound for each
request's head, and the error envelope for requests that are not HTTP.

uvicorn closes idle keep-alive connections but has no time limit on a head being received: a client that
opens a connection and sends half a request line, or headers one byte a minute, holds that connection
forever, and enough of them starve the process of sockets. Here every connection must deliver each request's
complete head within ``read_timeout`` of being ready for it — of the connection opening, or of the previous
response ending — or it is closed. (A stalled body is the app's to time: ``wvs_core.api.inputs.json_body``
answers 400 after the same time.)

llhttp bounds nothing by itself: a head (or a chunked body's trailer section) of any size would be buffered.
Here a head is at most ``MAX_HEAD_BYTES`` (16 KiB, what h11 allowed before): the bytes of reads that carry
nothing but the head are counted as they come, so a head dripped in small pieces is cut off as soon as it
passes the bound, and a complete head is measured once more from its parsed request line and fields (which
catches one that came in the same read as the previous request). Trailers are bounded by the same count and
ignored, as h11 ignored them.

llhttp also accepts what h11 refused, and that is refused here too: an HTTP version other than 1.0 or 1.1,
no ``Host`` in HTTP/1.1 or more than one, a ``Transfer-Encoding`` other than ``chunked``. A request asking to
switch protocols is served as plain HTTP/1.1 (WVS speaks nothing else, uvicorn is started with ``ws="none"``),
but only without a body: llhttp would not read its body, and the body would be parsed as the next request.

Every refusal is a 400 in the error envelope with a request id and ``connection: close`` (SPEC §2: oversized
input is a 400 like any other). Requests received before the refused bytes are answered first; a request
whose body the bad bytes broke, and that the app is already running, reads a disconnect instead, so its
answer goes nowhere and nothing is logged as an unhandled error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import httptools
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from wvs_core import metrics
from wvs_core.errors import ErrorCode
from wvs_core.ids import uuid7

MAX_HEAD_BYTES = 16 * 1024
NOT_HTTP = "the request is not valid HTTP/1.1 (request line, headers or chunked body)"
HEAD_TOO_LARGE = f"the request head (or trailer section) is larger than {MAX_HEAD_BYTES} bytes"
UPGRADE_WITH_BODY = "a request asking to switch protocols cannot carry a body"


class _Refused(Exception):
    """Raised in a parser callback: the request is refused with this message (the parser stops there)."""


class HeadDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request head is not complete in ``head_timeout``
    seconds, bounds heads to ``MAX_HEAD_BYTES``, and answers what it refuses in the envelope. Use
    ``with_head_timeout`` for a subclass with another timeout; it is uvicorn's ``http``."""

    head_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # the parser waits for (the rest of) a request head
        self._awaiting_chunk = False  # a chunk's size line was parsed, none of its data yet (or: trailers)
        self._head_bytes = 0  # bytes of the current head or trailer section, from reads that carried only them
        self._progress = 0  # parser events that end a head, carry body or end a message, ever
        self._refusal: bytes | None = None  # the 400 owed, sent once the requests before it are answered
        self._running: RequestResponseCycle | None = None  # the request the app runs (or ran last)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request's head is due."""
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed by either side: no deadline left to keep."""
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the connection on bytes that are not HTTP or on a head past the bound."""
        if self._refusal is not None:
            return  # refused: nothing after the bad bytes is read
        self._unset_keepalive_if_required()
        only_head = self._in_head or self._awaiting_chunk
        progress = self._progress
        try:
            self._feed(data)
        except httptools.HttpParserError as error:
            self._refuse(str(error.__context__) if isinstance(error.__context__, _Refused) else NOT_HTTP)
            return
        if only_head and progress == self._progress:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(HEAD_TOO_LARGE)

    def _feed(self, data: bytes) -> None:
        while True:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserUpgrade as upgrade:
                # The request asked to switch protocols and was served as plain HTTP (it had no body); the
                # parser stopped after it and was resumed: what follows is the next request.
                data = data[upgrade.args[0] :]

    # Parser callbacks (besides uvicorn's own work in them: the state the bounds need)

    def on_header(self, name: bytes, value: bytes) -> None:
        """A header field of the head (a request's fields); a trailer field is ignored."""
        if self._in_head:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: check what llhttp does not (size, version, Host, transfer coding, upgrade with
        a body), then hand the request to uvicorn."""
        version = self.parser.get_http_version()
        size = len(self.parser.get_method()) + len(self.url) + len(b"  HTTP/1.1\r\n\r\n")  # line, blank line
        hosts = 0
        body = False
        for name, value in self.headers:
            size += len(name) + len(value) + 4
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                if value.lower() != b"chunked":
                    raise _Refused(NOT_HTTP)
                body = True
            elif name == b"content-length":
                body = body or value.strip(b"0") != b""
        if max(size, self._head_bytes) > MAX_HEAD_BYTES:
            raise _Refused(HEAD_TOO_LARGE)
        if version not in ("1.0", "1.1") or hosts > 1 or (hosts == 0 and version == "1.1"):
            raise _Refused(NOT_HTTP)
        if body and self.parser.should_upgrade():
            raise _Refused(UPGRADE_WITH_BODY)
        self._in_head = False
        self._head_bytes = 0
        self._progress += 1
        super().on_headers_complete()

    def on_chunk_header(self) -> None:
        self._awaiting_chunk = True

    def on_body(self, body: bytes) -> None:
        self._awaiting_chunk = False
        self._progress += 1
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self._awaiting_chunk = False
        self._head_bytes = 0

    def on_message_complete(self) -> None:
        self._in_head = True
        self._awaiting_chunk = False
        self._head_bytes = 0
        self._progress += 1
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        """A response ended: the 400 owed goes out if nothing comes before it any more; otherwise the next
        request's head (pipelined or not) is due, unless the connection closes."""
        super().on_response_complete()
        if self._refusal is not None:
            self._send_refusal_when_due()
        else:
            self._arm_head_deadline()

    # The head deadline

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        if not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.head_timeout, self._head_deadline_passed)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_deadline_passed(self) -> None:
        self._head_deadline = None
        # Every request received so far is answered: the next head (or the rest of it) is late — and so is
        # it when an answered request's body still trickles in. Otherwise a request is the app's.
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            metrics.HTTP_STALLED.labels("head").inc()
            self.transport.close()

    # Refusing

    def _refuse(self, message: str) -> None:
        """Stop reading and owe the client a 400 with ``message``; it goes out once the requests received
        before the bad bytes are answered (now, if none is pending), then the connection closes."""
        cycle = self.cycle
        if not self._in_head and cycle is not None and not cycle.response_complete:
            # The bad bytes broke this request's body: the app reads a disconnect and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()  # queued behind another: never started
            elif cycle.response_started:
                self.transport.close()  # a 400 cannot follow the start of another answer
                return
        self._refusal = _envelope(message)
        self.flow.pause_reading()
        self._send_refusal_when_due()

    def _send_refusal_when_due(self) -> None:
        running = self._running
        if self.pipeline or (running is not None and not running.response_complete and not running.disconnected):
            return  # an earlier request is still the app's: its answer first
        if not self.transport.is_closing():
            self.transport.write(self._refusal or b"")
            self.transport.close()


def _envelope(message: str) -> bytes:
    """A complete 400 response: the error envelope with ``message``, its request id also in X-Request-Id."""
    request_id = uuid7()
    envelope = {"error": {"code": ErrorCode.BAD_REQUEST.value, "message": message, "request_id": request_id}}
    body = json.dumps(envelope).encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        f"x-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def with_head_timeout(seconds: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with a head deadline of ``seconds``."""
    return cast(
        type[HttpToolsProtocol], type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout": seconds})
    )
