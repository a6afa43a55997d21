"""A plugin loaded by name through ``plugins.modules``: a notifier that keeps events in memory."""

from __future__ import annotations

from wvs_core import hookimpl
from wvs_core.notifier import Event, Notifier


class MemoryNotifier(Notifier):
    """Collects events in a list."""

    name = "memory"
    events: list[Event] = []

    async def notify(self, event: Event) -> None:
        self.events.append(event)


@hookimpl
def wvs_register_notifiers() -> list[type[Notifier]]:
    return [MemoryNotifier]
