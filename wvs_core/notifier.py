"""The notifier interface: task and workspace events out to logs, webhooks, chat…"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs


@attrs.frozen
class Event:
    """Something that happened to a task or a workspace (the same facts as its audit row)."""

    action: str  # "task.succeeded", "task.dead", "workspace.active", ...
    wsid: str | None
    task_id: str | None
    request_id: str | None
    payload: dict[str, Any]


class Notifier(abc.ABC):
    """Receives events after the transaction that caused them committed.

    Subclasses set ``name`` (listed in ``notifiers.enabled``) and take ``[notifiers.<name>]`` as
    ``settings``. A notifier must not raise for a delivery failure it can retry itself; an exception
    is logged and otherwise ignored, so one broken webhook never stops the scheduler.
    """

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def notify(self, event: Event) -> None:
        """Deliver one event."""
