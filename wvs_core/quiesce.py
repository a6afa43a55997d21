"""The quiesce protocol interface: how the executor asks an agent to hold its writes."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from wvs_core import metrics
from wvs_core.agentview import AgentView
from wvs_core.cancellation import OpCanceled


class QuiesceTimeout(Exception):
    """The agent did not confirm the freeze in time; nothing may be cloned (fail-closed)."""


class QuiesceProtocol(abc.ABC):
    """Freezes and resumes the writers of one workspace.

    Subclasses set ``name`` (the value of ``plugins.quiesce`` that selects them) and take their own
    ``[plugins.settings.<name>]`` config table as ``settings``. The workspace comes as an ``AgentView``: the agent
    owns everything in it, so read and write it only through the view's methods (SPEC §13), never by path,
    and never wait on it longer than the freeze timeout allows.
    """

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    async def prepare(self, view: AgentView, task_id: str) -> None:  # noqa: B027 - optional hook
        """Set up whatever the protocol needs in a new workspace (called by init_workspace)."""

    async def recover(self, view: AgentView, dry_run: bool = False) -> str | None:
        """After a crash: release writers an interrupted op left frozen (unless ``dry_run``); returns what
        was found, or None when the writers are not frozen.

        Called with the workspace lock held, so no freeze of this workspace is in progress.
        """
        return None

    @abc.abstractmethod
    async def freeze(self, view: AgentView, task_id: str, timeout: float) -> None:
        """Ask the writers to stop and wait until they confirm; raise QuiesceTimeout after ``timeout``."""

    @abc.abstractmethod
    async def resume(self, view: AgentView, task_id: str) -> None:
        """Tell the writers they may go on. Called after every freeze attempt, successful or not."""


@asynccontextmanager
async def quiesced(
    protocol: QuiesceProtocol, view: AgentView, task_id: str, timeout: float, cancel: asyncio.Event
) -> AsyncIterator[None]:
    """Hold the workspace frozen for the body; resume on every path, including a failed freeze.

    Waiting for the agent is a safe point: ``cancel`` being set ends the wait with OpCanceled.
    """
    started = time.monotonic()
    try:
        freezing = asyncio.ensure_future(protocol.freeze(view, task_id, timeout))
        canceling = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait({freezing, canceling}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            canceling.cancel()
            interrupted = not freezing.done()
            if interrupted:
                freezing.cancel()
        if interrupted:
            raise OpCanceled(f"task {task_id} canceled while waiting for the agent to freeze")
        try:
            freezing.result()
        except QuiesceTimeout:
            metrics.QUIESCE_TIMEOUTS.inc()
            raise
        metrics.QUIESCE_WAIT.observe(time.monotonic() - started)
        yield
    finally:
        await protocol.resume(view, task_id)
