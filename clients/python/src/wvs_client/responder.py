"""The agent's side of the quiesce handshake (SPEC §6): ``<workspace root>/.wvs/control.json``, and a responder an
agent runs (embedded, or as ``wvs agent``) to stop its writes while WVS clones ``current``.

Example, inside an agent::

    responder = QuiesceResponder(workspace_root, on_freeze=pause_writes, on_resume=resume_writes)
    with responder.running_in_thread():
        run_agent()

The file is ``{"state", "timestamp" (RFC 3339), "task_id"}``; states go RUNNING → REQUEST_FREEZE (WVS) → FROZEN
(the agent) → REQUEST_RESUME (WVS) → RUNNING (the agent). Both sides replace it atomically under an exclusive
``flock`` on ``control.lock`` beside it, and an answer is written only while the file still holds the very
request it answers. WVS's executor reads the file as hostile input (its own reader lives with the executor).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

META = ".wvs"  # the handshake's directory in the workspace root (the agent view)
CONTROL_FILE = "control.json"
CONTROL_LOCK = "control.lock"
CURRENT = "current"  # the link WVS switches; the only data path an agent uses

DEFAULT_POLL_INTERVAL = 0.02  # the longest wait between two reads of control.json, on either side
GONE_POLL_INTERVAL = 1.0  # the wait between two looks for a view that is gone (unmounted), and between two
# checks that it is there: ~0 CPU
IDLE_AFTER = 60.0  # seconds without a request after which the responder reads control.json less often
IDLE_POLL_INTERVAL = 0.25  # the longest wait between two reads once idle: ~0.3 % of a core instead of ~3.5 %
FIRST_POLL = 0.001  # the first wait after a change: an answer that comes at once is seen at once
LOCK_TIMEOUT = 10.0  # a lock is held for one read and one rename; longer means it is stuck
LOCK_POLL = 0.005
MAX_CONTROL_BYTES = 4096  # SPEC §6: a larger control.json is no answer

Callback = Callable[[], Awaitable[None] | None]

log = logging.getLogger(__name__)


class ControlState(enum.StrEnum):
    """States of control.json, in the order they follow each other."""

    RUNNING = "RUNNING"  # the agent writes freely
    REQUEST_FREEZE = "REQUEST_FREEZE"  # WVS → agent: stop writing
    FROZEN = "FROZEN"  # agent → WVS: writes stopped
    REQUEST_RESUME = "REQUEST_RESUME"  # WVS → agent: go on


def encode_control(state: ControlState, task_id: str | None) -> bytes:
    """control.json's content: ``{"state", "timestamp" (RFC 3339, ms), "task_id"}``."""
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    return json.dumps({"state": state.value, "timestamp": timestamp, "task_id": task_id}).encode()


def decode_control(data: bytes | None) -> dict[str, Any] | None:
    """The parsed control.json, or None when ``data`` is missing, too large, or not a JSON object."""
    if data is None or len(data) > MAX_CONTROL_BYTES:
        return None
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def poll_intervals(longest: float) -> Iterator[float]:
    """Seconds to wait between reads of control.json after a change: FIRST_POLL, doubling up to ``longest``
    and staying there. No inotify: through FUSE it misses every change another machine makes."""
    interval = min(FIRST_POLL, longest)
    while True:
        yield interval
        interval = min(interval * 2, longest)


def missing_parts(workspace_root: Path) -> list[str]:
    """What ``workspace_root`` lacks to be a workspace root (``<mount>/<wsid>``) an initialized workspace has: the
    ``current`` link, ``.wvs/control.json``; empty when it has both."""
    missing = []
    if not (workspace_root / CURRENT).is_symlink():
        missing.append(f"{CURRENT} (the link WVS switches)")
    if not (workspace_root / META / CONTROL_FILE).is_file():
        missing.append(f"{META}/{CONTROL_FILE} (the quiesce handshake)")
    return missing


@contextlib.contextmanager
def control_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` on ``control.lock`` beside control.json ``path``.

    Both sides take it around every write, and the agent re-reads the request under it, so an answer never
    overwrites a newer request. Raises TimeoutError when the lock stays held for LOCK_TIMEOUT seconds.
    """
    lock_file = path.with_name(CONTROL_LOCK)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while (fd := _open_regular(lock_file, os.O_CREAT)) is None:  # a lease on it: wait as for a held lock
        _wait_for_lock(lock_file, deadline)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _wait_for_lock(lock_file, deadline)
        yield
    finally:
        os.close(fd)  # releases the lock


def _wait_for_lock(lock_file: Path, deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise TimeoutError(f"{lock_file} held for over {LOCK_TIMEOUT:g}s")
    time.sleep(LOCK_POLL)


def _open_regular(path: Path, flags: int = 0) -> int | None:
    """``path`` opened read-only without blocking and without following a link — any process in the sandbox may
    have put a FIFO or a link there, or hold a lease on it; None for a lease (opening would wait for it to break).
    Raises OSError: ELOOP for a link, EINVAL for anything else but a regular file, ENOENT when it is missing
    (without ``O_CREAT`` in ``flags``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | flags, 0o644)
    except BlockingIOError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file")
    return fd


def read_control(path: Path) -> dict[str, Any] | None:
    """control.json as it is now, or None when missing, unreadable, a link or anything else but a regular file, or
    leased (never waits)."""
    try:
        fd = _open_regular(path)
    except OSError:
        return None
    if fd is None:
        return None
    with open(fd, "rb") as handle:
        return decode_control(handle.read(MAX_CONTROL_BYTES + 1))


def answer_control(path: Path, request: Mapping[str, Any], state: ControlState) -> bool:
    """Write ``state`` only if control.json still holds ``request`` (compared whole, timestamp included); False,
    writing nothing, when a newer request replaced it meanwhile."""
    with control_lock(path):
        if read_control(path) != request:
            return False
        _replace(path, encode_control(state, request.get("task_id")))
        return True


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (unique per call, made new: never a link someone put
    at its name) and ``rename(2)``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}.tmp")
    made = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with open(made, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class ViewGone(Exception):
    """The responder's view (``<workspace root>/.wvs``) stayed gone longer than its ``give_up_after``."""


def _view_present(meta_dir: Path) -> bool:
    """True when ``meta_dir`` is a directory; any error (ENOENT, a dead FUSE mount's ENOTCONN) means gone."""
    return os.path.isdir(meta_dir)


class QuiesceResponder:
    """Watches ``<workspace_root>/.wvs/control.json`` and answers freeze and resume requests.

    ``on_freeze`` runs before FROZEN is written (stop your writes there; it may be a coroutine function);
    ``on_resume`` runs on REQUEST_RESUME, before RUNNING is written. ``poll_interval`` is the longest wait in
    seconds between two reads: after an answer the next read comes 1 ms later (a resume follows a freeze), and
    the waits double up to it while nothing happens; after IDLE_AFTER seconds without a request the longest wait
    becomes IDLE_POLL_INTERVAL (the first freeze after a quiet spell is seen up to 0.25 s later; an idle
    responder then costs ~0 CPU). Each answer written is logged (logger
    ``wvs_client.responder``, INFO): one line per freeze, one per resume.

    When the view is gone (``.wvs`` missing or unreadable: the volume was unmounted) the responder logs one
    WARNING, then looks again every GONE_POLL_INTERVAL seconds, and logs one INFO line when it is back. With
    ``give_up_after`` (seconds) ``run`` raises ViewGone once the view has stayed gone that long; without it
    the responder waits for the view forever.
    """

    def __init__(
        self,
        workspace_root: str | Path,
        on_freeze: Callback | None = None,
        on_resume: Callback | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        give_up_after: float | None = None,
    ) -> None:
        self.control_file = Path(workspace_root) / META / CONTROL_FILE
        self.on_freeze = on_freeze
        self.on_resume = on_resume
        self.poll_interval = poll_interval
        self.give_up_after = give_up_after
        self.frozen = False
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def step(self) -> ControlState | None:
        """Answer the current request, if any; returns the state written.

        The callback runs first (once per freeze or resume, however often a request repeats); the answer is then
        written only if the request is still there. When WVS replaced it meanwhile (a resume after a timed-out
        freeze, a freeze right after a resume) nothing is written and the next step answers the newer request.
        """
        control = await asyncio.to_thread(read_control, self.control_file)
        if not control:
            return None
        state = control.get("state")
        if state == ControlState.REQUEST_FREEZE:
            if not self.frozen:
                await _call(self.on_freeze)
                self.frozen = True
            answer = ControlState.FROZEN
        elif state == ControlState.REQUEST_RESUME:
            if self.frozen:
                await _call(self.on_resume)
                self.frozen = False
            answer = ControlState.RUNNING
        else:
            return None
        if not await asyncio.to_thread(answer_control, self.control_file, control, answer):
            return None
        what = "frozen for" if answer == ControlState.FROZEN else "resumed after"
        log.info("%s task %s (%s)", what, control.get("task_id"), self.control_file)
        return answer

    async def run(self) -> None:
        """Answer requests until ``stop()`` is called (or the task is cancelled); ``stop()`` ends the wait between
        two reads at once. A failing step (an I/O error, a callback raising) is logged and retried: the responder
        must outlive a bad moment. A failure that repeats is logged once, until a step goes through: the file may
        be broken for good (another process may have put a FIFO at control.lock) and the log must not fill the
        disk at one traceback per poll. Raises ViewGone when the view stays gone for ``give_up_after`` seconds."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        intervals = poll_intervals(self.poll_interval)
        failure: str | None = None  # the failure last logged, while steps keep failing
        gone_since: float | None = None
        last_answer = next_view_check = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_view_check and not await asyncio.to_thread(_view_present, self.control_file.parent):
                if gone_since is None:
                    gone_since = time.monotonic()
                    log.warning(
                        "%s is gone (the volume unmounted?); looking again every %gs",
                        self.control_file.parent,
                        GONE_POLL_INTERVAL,
                    )
                gone_for = time.monotonic() - gone_since
                if self.give_up_after is not None and gone_for >= self.give_up_after:
                    raise ViewGone(f"{self.control_file.parent} has been gone for {gone_for:.0f}s")
                wait = GONE_POLL_INTERVAL  # and look again then: next_view_check stays behind
            else:
                if now >= next_view_check:
                    next_view_check = now + GONE_POLL_INTERVAL
                if gone_since is not None:
                    gone_since = None
                    log.info("%s is back", self.control_file.parent)
                try:
                    if await self.step() is not None:
                        intervals, last_answer = poll_intervals(self.poll_interval), time.monotonic()
                    failure = None
                except Exception as error:
                    if repr(error) != failure:
                        log.exception("quiesce responder step failed for %s; retrying", self.control_file)
                        failure = repr(error)
                wait = next(intervals)
                if time.monotonic() - last_answer > IDLE_AFTER:
                    wait = max(wait, IDLE_POLL_INTERVAL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def stop(self) -> None:
        """Make ``run`` return after its current step; callable from any thread or a signal handler."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(wake.set)

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[QuiesceResponder]:
        """Run the responder in a background thread for the duration of the ``with`` block."""
        thread = threading.Thread(target=asyncio.run, args=(self.run(),), name="wvs-quiesce-responder", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop()
            thread.join()


async def _call(callback: Callback | None) -> None:
    if callback is not None:
        outcome = callback()
        if outcome is not None:
            await outcome
