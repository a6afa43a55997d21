"""The ``log`` notifier: every task and workspace event as a structured log line."""

from __future__ import annotations

import logging

from wvs_core import hookimpl
from wvs_core.notifier import Event, Notifier

log = logging.getLogger("wvs.events")


class LogNotifier(Notifier):
    """Logs each event at INFO with its wsid, task_id and request_id as fields."""

    name = "log"

    async def notify(self, event: Event) -> None:
        """Write one log line."""
        log.info(
            event.action,
            extra={
                "wsid": event.wsid,
                "task_id": event.task_id,
                "request_id": event.request_id,
                **event.payload,
            },
        )


@hookimpl(trylast=True)
def wvs_register_notifiers() -> list[type[Notifier]]:
    """Provide ``log``."""
    return [LogNotifier]
