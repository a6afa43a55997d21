"""The control.json handshake (SPEC §6): file format and the executor's side."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wvs_core.fsutil import atomic_write_json, read_json
from wvs_core.layout import WorkspaceLayout
from wvs_core.quiesce import QuiesceProtocol, QuiesceTimeout

DEFAULT_POLL_INTERVAL = 0.02
LOCK_TIMEOUT = 10.0  # a lock is held for one read and one rename; longer means its holder is stuck


class ControlState(enum.StrEnum):
    """States of control.json, in the order they follow each other."""

    RUNNING = "RUNNING"  # the agent writes freely
    REQUEST_FREEZE = "REQUEST_FREEZE"  # executor → agent: stop writing
    FROZEN = "FROZEN"  # agent → executor: writes stopped
    REQUEST_RESUME = "REQUEST_RESUME"  # executor → agent: go on


@contextlib.contextmanager
def control_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` on ``control.lock`` beside control.json.

    Both sides take it around every write, and the agent re-reads the request under it, so an answer
    never overwrites a newer request. Raises TimeoutError when the lock stays held for LOCK_TIMEOUT.
    """
    lock_file = path.with_name("control.lock")
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{lock_file} held for over {LOCK_TIMEOUT:g}s") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace(path: Path, state: ControlState, task_id: str | None) -> None:
    atomic_write_json(
        path,
        {
            "state": state.value,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "task_id": task_id,
        },
    )


def write_control(path: Path, state: ControlState, task_id: str | None) -> None:
    """The executor's side: atomically replace control.json with a request, under the control lock."""
    with control_lock(path):
        _replace(path, state, task_id)


def answer_control(path: Path, request: Mapping[str, Any], state: ControlState) -> bool:
    """The agent's side: write ``state`` only if control.json still holds ``request`` (compared whole,
    timestamp included); False, writing nothing, when a newer request replaced it meanwhile."""
    with control_lock(path):
        if read_control(path) != request:
            return False
        _replace(path, state, request.get("task_id"))
        return True


def read_control(path: Path) -> dict[str, Any] | None:
    """The current contents of control.json, or None when missing or unreadable."""
    data = read_json(path)
    return data if isinstance(data, dict) else None


class ControlFileQuiesce(QuiesceProtocol):
    """Freeze through ``<root>/.wvs/control.json``; the agent runs ``QuiesceResponder`` or ``wvs agent``.

    Settings (``[plugins.settings.control-json]``): ``poll_interval`` seconds (default 0.02).
    """

    name = "control-json"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.poll_interval = float(settings.get("poll_interval", DEFAULT_POLL_INTERVAL))

    async def prepare(self, layout: WorkspaceLayout, task_id: str) -> None:
        """Create control.json in state RUNNING unless it exists."""
        if read_control(layout.control_file) is None:
            await asyncio.to_thread(write_control, layout.control_file, ControlState.RUNNING, task_id)

    async def recover(self, layout: WorkspaceLayout, dry_run: bool = False) -> str | None:
        """A control.json left in REQUEST_FREEZE or FROZEN gets the REQUEST_RESUME it never received."""
        control = await asyncio.to_thread(read_control, layout.control_file) or {}
        state = control.get("state")
        if state not in (ControlState.REQUEST_FREEZE, ControlState.FROZEN):
            return None
        if not dry_run:
            await asyncio.to_thread(
                write_control, layout.control_file, ControlState.REQUEST_RESUME, control.get("task_id")
            )
        return f"agent left frozen: control.json is {state}"

    async def freeze(self, layout: WorkspaceLayout, task_id: str, timeout: float) -> None:
        """Write REQUEST_FREEZE and wait for FROZEN naming this task."""
        await asyncio.to_thread(write_control, layout.control_file, ControlState.REQUEST_FREEZE, task_id)
        deadline = time.monotonic() + timeout
        while True:
            control = await asyncio.to_thread(read_control, layout.control_file)
            if control and control.get("state") == ControlState.FROZEN and control.get("task_id") == task_id:
                return
            if time.monotonic() >= deadline:
                raise QuiesceTimeout(f"agent of {layout.wsid} did not confirm FROZEN within {timeout:g}s")
            await asyncio.sleep(self.poll_interval)

    async def resume(self, layout: WorkspaceLayout, task_id: str) -> None:
        """Write REQUEST_RESUME."""
        await asyncio.to_thread(write_control, layout.control_file, ControlState.REQUEST_RESUME, task_id)


class NoQuiesce(QuiesceProtocol):
    """``none``: no handshake. Only for trusted single-writer setups where nothing writes during a clone."""

    name = "none"

    async def freeze(self, layout: WorkspaceLayout, task_id: str, timeout: float) -> None:
        """Nothing to wait for."""

    async def resume(self, layout: WorkspaceLayout, task_id: str) -> None:
        """Nothing to tell."""
