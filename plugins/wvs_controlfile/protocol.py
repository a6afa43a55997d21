"""The control.json handshake (SPEC §6), the executor's side. The file's format and the agent's side live in
``wvs_client.responder`` (an agent installs only wvs-client); this side reads the file as hostile input."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from wvs_client.responder import (
    DEFAULT_POLL_INTERVAL,
    FIRST_POLL,
    LOCK_POLL,
    MAX_CONTROL_BYTES,
    ControlState,
    decode_control,
    encode_control,
)
from wvs_core.agentview import AgentView
from wvs_core.convert import Seconds, describe_error, positive, structure
from wvs_core.errors import ConfigError
from wvs_core.layout import CONTROL_FILE, CONTROL_LOCK, META
from wvs_core.quiesce import QuiesceProtocol, QuiesceTimeout

log = logging.getLogger(__name__)

EXECUTOR_LOCK_WAIT = 1.0  # outside a freeze: resume, recover, prepare never wait longer for control.lock
ANSWER_LATENESS = 0.25  # an agent's answer is seen at most this fraction of the wait so far after it came


def answer_wait(waited: float, longest: float) -> float:
    """Seconds to wait before the next read of control.json, ``waited`` seconds after writing a request the agent
    is to answer: ANSWER_LATENESS of ``waited``, at least FIRST_POLL and at most ``longest``. An agent answers
    within tens of milliseconds (its own poll, then its write), so its answer is seen at most 1 ms or a quarter
    of the wait late, whichever is more (plus a read), where waits that doubled could see an answer as late
    again as the whole wait. An agent that does not answer is read about 4 + log₁.₂₅(``longest`` / 1 ms) times
    in the first 4 x ``longest`` (17 for 20 ms), then once every ``longest``."""
    return min(max(waited * ANSWER_LATENESS, FIRST_POLL), longest)


@attrs.frozen
class ControlFileSettings:
    """``[plugins.settings.control-json]``: ``poll_interval``, the longest wait between two reads of control.json
    while waiting for FROZEN (a duration: seconds, or text such as ``"20ms"``)."""

    poll_interval: Seconds = attrs.field(default=Seconds(DEFAULT_POLL_INTERVAL), validator=positive)


class ControlFileQuiesce(QuiesceProtocol):
    """Freeze through ``<root>/.wvs/control.json``; the agent runs ``QuiesceResponder`` or ``wvs agent``.

    The agent owns the file, so the executor reads it through the ``AgentView`` only: a regular file of at
    most 4 KiB holding the JSON object, anything else (a link, a FIFO, a device, a huge file) is "no
    answer" and the freeze times out. The lock is polled, never waited on in a thread, and never past the
    freeze's deadline, so one workspace's control file cannot hold up another's task.

    Settings (``[plugins.settings.control-json]``, ``ControlFileSettings``): ``poll_interval``, the longest
    wait between two reads while waiting for FROZEN (default 20 ms; the first read comes 1 ms after the
    request, and each wait is a quarter of the time waited so far, up to it: ``answer_wait``). Raises
    ConfigError for a setting it does not know or a ``poll_interval`` that is not a duration above zero (which
    durations make at least 1 ms: a shorter wait would read control.json in a loop).
    """

    name = "control-json"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        try:
            parsed = structure(dict(settings), ControlFileSettings)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            raise ConfigError(f"invalid plugins.settings.{self.name}: {describe_error(error)}") from None
        self.poll_interval = parsed.poll_interval

    async def prepare(self, view: AgentView, task_id: str) -> None:
        """Create ``.wvs/`` (the agent's: it answers by replacing control.json there) and control.json in
        state RUNNING unless it holds a state already."""
        await asyncio.to_thread(view.directory, META, True)
        await asyncio.to_thread(view.give_to_agent, META)
        if await self._read(view) is None:
            await self._write(view, ControlState.RUNNING, task_id, time.monotonic() + EXECUTOR_LOCK_WAIT)

    async def recover(self, view: AgentView, dry_run: bool = False) -> str | None:
        """A control.json left in REQUEST_FREEZE or FROZEN gets the REQUEST_RESUME it never received."""
        control = await self._read(view) or {}
        state = control.get("state")
        if state not in (ControlState.REQUEST_FREEZE, ControlState.FROZEN):
            return None
        if not dry_run:
            task_id = control.get("task_id") if isinstance(control.get("task_id"), str) else None
            await self._write(view, ControlState.REQUEST_RESUME, task_id, time.monotonic() + EXECUTOR_LOCK_WAIT)
        return f"agent left frozen: control.json is {state}"

    async def freeze(self, view: AgentView, task_id: str, timeout: float) -> None:
        """Write REQUEST_FREEZE and wait for FROZEN naming this task, all within ``timeout`` (the last read comes
        at the deadline, never a wait later)."""
        deadline = time.monotonic() + timeout
        if not await self._write(view, ControlState.REQUEST_FREEZE, task_id, deadline):
            raise QuiesceTimeout(f"control.lock of {view.layout.wsid} stayed locked for {timeout:g}s")
        asked = time.monotonic()
        while True:
            now = time.monotonic()
            await asyncio.sleep(min(answer_wait(now - asked, self.poll_interval), max(0.0, deadline - now)))
            control = await self._read(view)
            if control and control.get("state") == ControlState.FROZEN and control.get("task_id") == task_id:
                return
            if time.monotonic() >= deadline:
                raise QuiesceTimeout(f"agent of {view.layout.wsid} did not confirm FROZEN within {timeout:g}s")

    async def resume(self, view: AgentView, task_id: str) -> None:
        """Write REQUEST_RESUME; when the agent keeps the lock, log it (recovery resumes before the next op)."""
        if not await self._write(view, ControlState.REQUEST_RESUME, task_id, time.monotonic() + EXECUTOR_LOCK_WAIT):
            log.warning("could not write REQUEST_RESUME for %s: control.lock stays locked", view.layout.wsid)

    @staticmethod
    async def _read(view: AgentView) -> dict[str, Any] | None:
        return decode_control(await asyncio.to_thread(view.read_file, META, CONTROL_FILE, MAX_CONTROL_BYTES))

    async def _write(self, view: AgentView, state: ControlState, task_id: str | None, deadline: float) -> bool:
        """Replace control.json under control.lock; False when the lock was not had before ``deadline`` (held,
        or leased by the agent: opening a leased file would wait for the lease to break)."""
        while (fd := await asyncio.to_thread(view.open_lock_file, META, CONTROL_LOCK)) is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(LOCK_POLL)
        try:
            while not _try_flock(fd):
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(LOCK_POLL)
            await asyncio.to_thread(view.replace_file, META, CONTROL_FILE, encode_control(state, task_id))
            return True
        finally:
            os.close(fd)  # releases the lock


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class NoQuiesce(QuiesceProtocol):
    """``none``: no handshake. Only for trusted single-writer setups where nothing writes during a clone."""

    name = "none"

    async def freeze(self, view: AgentView, task_id: str, timeout: float) -> None:
        """Nothing to wait for."""

    async def resume(self, view: AgentView, task_id: str) -> None:
        """Nothing to tell."""
