"""The control.json handshake (SPEC §6): file format and the executor's side."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wvs_core.fsutil import atomic_write_json, read_json
from wvs_core.layout import WorkspaceLayout
from wvs_core.quiesce import QuiesceProtocol, QuiesceTimeout

DEFAULT_POLL_INTERVAL = 0.02


class ControlState(enum.StrEnum):
    """States of control.json, in the order they follow each other."""

    RUNNING = "RUNNING"  # the agent writes freely
    REQUEST_FREEZE = "REQUEST_FREEZE"  # executor → agent: stop writing
    FROZEN = "FROZEN"  # agent → executor: writes stopped
    REQUEST_RESUME = "REQUEST_RESUME"  # executor → agent: go on


def write_control(path: Path, state: ControlState, task_id: str | None) -> None:
    """Atomically replace control.json."""
    atomic_write_json(
        path,
        {
            "state": state.value,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "task_id": task_id,
        },
    )


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
