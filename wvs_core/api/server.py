"""The API's HTTP connections: uvicorn's h11 protocol, with a deadline for each request's head and the error
envelope for requests that are not HTTP.

uvicorn bounds the size of a request head (h11's 16 KiB) and closes idle keep-alive connections, but it
has no time limit on a head being received: a client that opens a connection and sends half a request
line, or headers one byte a minute, holds that connection forever, and enough of them starve the process
of sockets. Here every connection must deliver each request's complete head within ``read_timeout`` of
being ready for it — of the connection opening, or of the previous response ending — or it is closed.
(A stalled body is the app's to time: ``wvs_core.api.inputs.json_body`` answers 400 after the same time.)

A request h11 cannot parse (a bad request line, header or chunk) is answered by uvicorn in plain text — and,
when the bad bytes come in the body of a request the app is already running, uvicorn's 400 goes out first
and the app's own answer then fails inside h11, logged as an unhandled error. Here the 400 is the JSON
envelope with a request id, and a running request is told its client went away instead.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from wvs_core import metrics
from wvs_core.errors import ErrorCode
from wvs_core.ids import uuid7

NOT_HTTP = "the request is not valid HTTP/1.1 (request line, headers or chunked body)"


class HeadDeadlineProtocol(H11Protocol):
    """``H11Protocol`` that closes a connection whose request head is not complete in ``head_timeout``
    seconds. Use ``with_head_timeout`` for a subclass with another timeout; it is uvicorn's ``http``."""

    head_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: its first request's head is due."""
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        """A response ended: the next request's head (pipelined or not) is due, unless the connection closes."""
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Closed by either side: no deadline left to keep."""
        self._cancel_head_deadline()
        super().connection_lost(exc)

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
        # IDLE: h11 still waits for (the rest of) a request head; a request already answered whose body
        # still trickles in holds the next head up just as well. Otherwise the request is the app's.
        answered = self.cycle is not None and self.cycle.response_complete
        if (self.conn.their_state is h11.IDLE or answered) and not self.transport.is_closing():
            metrics.HTTP_STALLED.labels("head").inc()
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """h11 refused the client's bytes: answer 400 in the envelope (if no answer has begun) and close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app is running this request: from now on it reads a disconnect and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        request_id = uuid7()
        envelope = {"error": {"code": ErrorCode.BAD_REQUEST.value, "message": NOT_HTTP, "request_id": request_id}}
        body = json.dumps(envelope).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        try:
            for event in (h11.Response(status_code=400, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass  # nothing more can be said on this connection
        self.transport.close()


def with_head_timeout(seconds: float) -> type[H11Protocol]:
    """The protocol class for uvicorn's ``http`` setting, with a head deadline of ``seconds``."""
    return cast(type[H11Protocol], type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout": seconds}))
