"""The ``log`` notifier: every event as a structured log line (logger ``wvs.events``)."""

from __future__ import annotations

import logging

from wvs_core import hookimpl
from wvs_core.notifier import Event, Notifier

log = logging.getLogger("wvs.events")


class LogNotifier(Notifier):
    """Logs each event at INFO: the message is its type; ``event_id``, ``wsid``, ``task_id``, ``request_id``,
    ``actor`` and ``data`` are fields of the JSON line."""

    name = "log"

    async def notify(self, event: Event) -> None:
        """Write one log line."""
        log.info(
            event.type,
            extra={
                "event_id": event.event_id,
                "wsid": event.wsid,
                "task_id": event.task_id,
                "request_id": event.request_id,
                "actor": event.actor,
                "data": event.data,
            },
        )


@hookimpl(trylast=True)
def wvs_register_notifiers() -> list[type[Notifier]]:
    """Provide ``log``."""
    return [LogNotifier]
