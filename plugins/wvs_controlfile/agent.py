"""The agent's side of the control.json handshake: a responder an agent embeds (or runs as ``wvs agent``).

Example, inside an agent::

    responder = QuiesceResponder(workspace_root, on_freeze=pause_writes, on_resume=resume_writes)
    with responder.running_in_thread():
        run_agent()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from wvs_controlfile.protocol import (
    DEFAULT_POLL_INTERVAL,
    ControlState,
    answer_control,
    poll_intervals,
    read_control,
)

Callback = Callable[[], Awaitable[None] | None]

log = logging.getLogger(__name__)


class QuiesceResponder:
    """Watches ``<workspace_root>/.wvs/control.json`` and answers freeze and resume requests.

    ``on_freeze`` runs before FROZEN is written (stop your writes there; it may be a coroutine
    function); ``on_resume`` runs on REQUEST_RESUME, before RUNNING is written. ``poll_interval`` is the
    longest wait in seconds between two reads: after an answer the next read comes 1 ms later (a resume
    follows a freeze), and the waits double up to it while nothing happens.
    """

    def __init__(
        self,
        workspace_root: str | Path,
        on_freeze: Callback | None = None,
        on_resume: Callback | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.control_file = Path(workspace_root) / ".wvs" / "control.json"
        self.on_freeze = on_freeze
        self.on_resume = on_resume
        self.poll_interval = poll_interval
        self.frozen = False
        self._stop = threading.Event()

    async def step(self) -> ControlState | None:
        """Answer the current request, if any; returns the state written.

        The callback runs first (once per freeze or resume, however often a request repeats); the answer
        is then written only if the request is still there. When the executor replaced it meanwhile (a
        resume after a timed-out freeze, a freeze right after a resume) nothing is written and the next
        step answers the newer request.
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
        return answer if await asyncio.to_thread(answer_control, self.control_file, control, answer) else None

    async def run(self) -> None:
        """Answer requests until ``stop()`` is called (or the task is cancelled). A failing step (an I/O
        error, a callback raising) is logged and retried: the responder must outlive a bad moment."""
        intervals = poll_intervals(self.poll_interval)
        while not self._stop.is_set():
            try:
                if await self.step() is not None:
                    intervals = poll_intervals(self.poll_interval)
            except Exception:
                log.exception("quiesce responder step failed for %s; retrying", self.control_file)
            await asyncio.sleep(next(intervals))

    def stop(self) -> None:
        """Make ``run`` return after its current step."""
        self._stop.set()

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
