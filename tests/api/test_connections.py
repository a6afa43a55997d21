"""Raw connections. Slow clients cannot starve the API: a request head must arrive within
``api.read_timeout`` or the connection is closed, a body within it or the answer is 400; everyone else is
served meanwhile. Bytes that are not HTTP get the error envelope, and never an unhandled error."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService, make_config

TIMEOUT = 2.0
MARGIN = 4.0  # two shared cores, 300 sockets: room for the loop to get round to them
STALLED = 300

# What a stalled client has sent when it stops: nothing at all, part of a request line, part of the
# headers, or one whole request and then part of the next on the same connection.
PARTIAL_HEADS = [
    b"",
    b"GET /v1/tas",
    b"GET /healthz HTTP/1.1\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHo",
]


@pytest.fixture
async def api_address(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[tuple[str, int]]:
    config = make_config(database, tmp_path, api={"read_timeout": f"{TIMEOUT}s"})
    service = await start_service(config, planes=("api",))
    url = httpx.URL(service.api_url or "")
    yield url.host, url.port or 80


async def closed_by_server(reader: asyncio.StreamReader, deadline: float) -> bool:
    """Whether the server closes the connection before ``deadline`` (reading whatever it sends first)."""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), max(deadline - time.monotonic(), 0)):
            del chunk
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_stalled_heads_are_dropped_and_others_are_served(api_address: tuple[str, int]) -> None:
    host, port = api_address
    connections = []
    started = time.monotonic()
    for number in range(STALLED):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(PARTIAL_HEADS[number % len(PARTIAL_HEADS)])
        await writer.drain()
        connections.append((reader, writer))
    # While they hang, a normal client is served, and so is one that sends its head slowly but in time.
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=TIMEOUT) as client:
        assert (await client.get("/healthz")).status_code == 200
    reader, writer = await asyncio.open_connection(host, port)
    for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: x\r\n", b"\r\n"):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(TIMEOUT / 5)
    assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"HTTP/1.1 200")
    writer.close()

    results = await asyncio.gather(*(closed_by_server(reader, started + TIMEOUT + MARGIN) for reader, _ in connections))
    elapsed = time.monotonic() - started
    for _, writer in connections:
        writer.close()
    assert all(results), f"{results.count(False)} of {STALLED} stalled connections still open after {elapsed:.1f}s"
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=TIMEOUT) as client:
        metrics = (await client.get("/metrics")).text
    assert 'wvs_http_stalled_requests_total{part="head"}' in metrics


async def test_a_stalled_body_is_answered_400(api_address: tuple[str, int]) -> None:
    host, port = api_address
    reader, writer = await asyncio.open_connection(host, port)
    head = b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nContent-Length: 100\r\n\r\n"
    writer.write(head + b'{"wsid": ')
    await writer.drain()
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(65536), TIMEOUT + MARGIN)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"WVS_BAD_REQUEST" in answer and b"body not received within" in answer
    assert time.monotonic() - started >= TIMEOUT * 0.9
    writer.close()


def envelope_of(answer: bytes) -> dict[str, str]:
    """The error of a raw 400 answer, checked: JSON envelope, its request id in the X-Request-Id header."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    error = json.loads(body)["error"]
    assert error["code"] == "WVS_BAD_REQUEST" and error["message"]
    assert headers[b"x-request-id"].decode() == error["request_id"]
    return dict(error)


async def exchange(address: tuple[str, int], data: bytes) -> bytes:
    """Send ``data`` on a new connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), TIMEOUT + MARGIN)
    finally:
        writer.close()


NOT_HTTP = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    b"GET /v1/tasks/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: \x00\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
    b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
]


@pytest.mark.parametrize("data", NOT_HTTP, ids=range(len(NOT_HTTP)))
async def test_bytes_that_are_not_http_get_the_envelope(api_address: tuple[str, int], data: bytes) -> None:
    envelope_of(await exchange(api_address, data))


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n", b"f" * 5000 + b"\r\n", b"5\r\n{}{}{}{}\r\n", b"2;" + b"x" * 20_000 + b"\r\n"],
    ids=["not hex", "huge size", "chunk overrun", "huge extension"],
)
async def test_a_broken_chunked_body_is_not_an_unhandled_error(
    api_address: tuple[str, int], body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # The app is already running the request (reading its body) when the parser finds the body broken.
    for path in (b"/v1/workspaces", b"/healthz"):
        head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nTransfer-Encoding: chunked\r\n\r\n"
        with caplog.at_level(logging.ERROR):
            answer = await exchange(api_address, head + body)
        await asyncio.sleep(0.2)  # let the app's side of the request end
        assert answer.startswith(b"HTTP/1.1 4"), answer
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_client_gone_mid_body_is_not_an_unhandled_error(
    api_address: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    _reader, writer = await asyncio.open_connection(*api_address)
    writer.write(b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nContent-Length: 50\r\n\r\n{")
    await writer.drain()
    await asyncio.sleep(0.2)
    with caplog.at_level(logging.ERROR):
        writer.close()
        await asyncio.sleep(0.5)
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


HEAD_BOUND = 16 * 1024  # what h11 allowed; wvs_core.api.server.MAX_HEAD_BYTES
GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"


def statuses_of(answer: bytes) -> list[int]:
    """The status of each response in ``answer`` (responses with a Content-Length, one after another)."""
    statuses = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        statuses.append(int(lines[0].split()[1]))
        headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
        answer = rest[int(headers.get(b"content-length", b"0")) :]
    return statuses


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


# One head past the bound, in one write: one long field, a long request line, many small fields.
TOO_LARGE = [
    GET + b"X-Big: " + b"a" * HEAD_BOUND + b"\r\n\r\n",
    b"GET /healthz?" + b"a" * HEAD_BOUND + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    GET + b"a: b\r\n" * (HEAD_BOUND // 6 + 1) + b"\r\n",
]


@pytest.mark.parametrize("data", TOO_LARGE, ids=["long field", "long request line", "many fields"])
async def test_a_head_past_16_kib_gets_the_envelope(api_address: tuple[str, int], data: bytes) -> None:
    error = envelope_of(await exchange(api_address, data))
    assert str(HEAD_BOUND) in error["message"]


async def test_a_head_just_under_16_kib_is_served(api_address: tuple[str, int]) -> None:
    data = GET + b"X-Big: " + b"a" * (HEAD_BOUND - 200) + b"\r\nConnection: close\r\n\r\n"
    assert statuses_of(await exchange(api_address, data)) == [200]
    reader, writer = await asyncio.open_connection(*api_address)
    for start in range(0, len(data), 100):  # and in small pieces
        writer.write(data[start : start + 100])
        await writer.drain()
    assert statuses_of(await asyncio.wait_for(reader.read(), TIMEOUT + MARGIN)) == [200]
    writer.close()


async def test_a_head_dripped_past_16_kib_is_refused_before_it_ends(
    api_address: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    # A field that never ends, in 64-byte pieces: the server answers once the bound is passed, not at the
    # head deadline, and does not buffer what would follow. (The last piece passes the bound: nothing is
    # left unread when the server closes.)
    reader, writer = await asyncio.open_connection(*api_address)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR):
        writer.write(GET + b"X-Drip: ")
        sent = len(GET) + 8
        while sent <= HEAD_BOUND:
            piece = b"a" * min(64, HEAD_BOUND + 1 - sent)
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        answer = await asyncio.wait_for(reader.read(), TIMEOUT + MARGIN)
    writer.close()
    envelope_of(answer)
    assert time.monotonic() - started < TIMEOUT
    no_errors_logged(caplog)


async def test_endless_trailers_are_refused(api_address: tuple[str, int], caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection(*api_address)
    head = b"POST /v1/workspaces HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\nTransfer-Encoding: chunked\r\n\r\n"
    with caplog.at_level(logging.ERROR):
        writer.write(head + b"2\r\n{}\r\n0\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"X-Trailer: ")
        for _ in range(HEAD_BOUND // 64 + 1):
            writer.write(b"a" * 64)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), TIMEOUT / 2)
        await asyncio.sleep(0.2)
    writer.close()
    envelope_of(answer)
    no_errors_logged(caplog)


async def test_a_slowloris_dripping_one_byte_at_a_time_is_closed(api_address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*api_address)
    started = time.monotonic()
    closed = False
    for byte in GET + b"X-Slow: " + b"a" * 100:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if reader.at_eof() or await closed_by_server(reader, time.monotonic() + TIMEOUT / 8):
            closed = True
            break
    writer.close()
    assert closed
    assert TIMEOUT * 0.9 <= time.monotonic() - started <= TIMEOUT + MARGIN


async def test_an_answered_request_whose_body_trickles_is_closed(api_address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*api_address)
    writer.write(GET + b"Content-Length: 1000\r\n\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < TIMEOUT + MARGIN:
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if await closed_by_server(reader, time.monotonic() + TIMEOUT / 8):
            closed = True
            break
    writer.close()
    assert closed


# Shapes llhttp would take, or take differently from a proxy in front, that are refused: both framings, a
# Content-Length list, a coding WVS does not decode, whitespace before a colon, a folded line, two Hosts,
# versions other than HTTP/1.0 and 1.1 (an HTTP/0.9 line, the HTTP/2 preface), bare LF, bad chunk sizes, a
# request asking to switch protocols with a body (llhttp would parse its body as the next request).
SMUGGLING = [
    GET + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    GET + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    GET + b"Content-Length: 5, 5\r\n\r\nhello",
    GET + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    GET + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    GET + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    GET + b"X-A: a\r\n b\r\n\r\n",
    GET + b"Host: y\r\n\r\n",
    b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
    b"GET /healthz\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\n\n",
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n",
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n",
    b"POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 33\r\n\r\n"
    + GET
    + b"\r\n",
]


@pytest.mark.parametrize("data", SMUGGLING, ids=range(len(SMUGGLING)))
async def test_ambiguous_framing_gets_the_envelope(
    api_address: tuple[str, int], data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        envelope_of(await exchange(api_address, data))
        await asyncio.sleep(0.2)
    no_errors_logged(caplog)


# Requests before bad bytes are answered first; HTTP/1.0 and an Upgrade without a body are plain requests.
IN_ORDER = [
    (GET + b"\r\n" + b"\x16\x03\x01\x02\x00\r\n\r\n", [200, 400]),
    (GET + b"\r\n" + GET + b"\r\n" + b"GET /healthz HT\x00\r\n\r\n", [200, 200, 400]),
    (GET + b"\r\n" + TOO_LARGE[0], [200, 400]),
    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" + b"zz\r\n\r\n", [405, 400]),
    (b"GET /healthz HTTP/1.0\r\n\r\n", [200]),
    (
        GET
        + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        + GET
        + b"Connection: close\r\n\r\n",
        [200, 200],
    ),
]


@pytest.mark.parametrize("data, statuses", IN_ORDER, ids=range(len(IN_ORDER)))
async def test_pipelined_requests_are_answered_in_order(
    api_address: tuple[str, int], data: bytes, statuses: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = await exchange(api_address, data)
        await asyncio.sleep(0.2)
    assert statuses_of(answer) == statuses, answer
    if 400 in statuses:
        envelope_of(answer[answer.index(b"HTTP/1.1 400") :])
    no_errors_logged(caplog)
