"""The notifier interface: events out to logs, webhooks, chat…

Notifiers never run inside a task's slot. The event dispatcher (``wvs_core.dispatcher``, in the worker)
tails the outbox and hands each event to every *subscription* of every enabled notifier, at least once and
in order per workspace, retrying a failed delivery with exponential backoff; each subscription keeps its
own position in the database, so a slow or broken one holds back nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, ClassVar

import attrs
import cattrs

from wvs_core.convert import Seconds, describe_error, structure
from wvs_core.errors import ConfigError
from wvs_core.events import EVENT_TYPE_NAME, Event

__all__ = ["Event", "Notifier", "Retry", "Subscription"]


@attrs.frozen
class Retry:
    """How a failed delivery is retried: after ``base``, doubling up to ``max`` between attempts, until
    ``period`` has passed since the first attempt; then the event is given up (state ``failed``)."""

    base: Seconds = Seconds(1.0)
    max: Seconds = Seconds(600.0)
    period: Seconds = Seconds(86400.0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.base * 2 ** max(attempt - 1, 0), self.max))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], where: str) -> Retry:
        """``retry_base``, ``retry_max`` and ``retry_period`` of a settings table (durations)."""
        values = {key: settings[f"retry_{key}"] for key in ("base", "max", "period") if f"retry_{key}" in settings}
        try:
            retry = structure(values, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            raise ConfigError(f"invalid {where}: {describe_error(error)}") from None
        if retry.base <= 0 or retry.max < retry.base:
            raise ConfigError(f"{where}: retry_base must be positive and at most retry_max")
        return retry


@attrs.frozen
class Subscription:
    """One stream of events out of WVS: a name (the key of its position in ``wvs.event_cursors``), the event
    types it wants (None: all), how to deliver one event, and how to retry."""

    name: str
    deliver: Callable[[Event], Awaitable[None]]
    types: frozenset[str] | None = None
    retry: Retry = attrs.field(factory=Retry)

    def wants(self, event: Event) -> bool:
        """Whether ``event`` goes to this subscription."""
        return self.types is None or event.type in self.types


def check_event_types(types: Collection[str], where: str) -> frozenset[str]:
    """``types`` as a set, each shaped like an event type (ConfigError naming ``where`` otherwise). Whether each
    is one the service records — the core's or a loaded op's — is checked when the worker builds its notifiers
    (``PluginRegistry.build_notifiers``)."""
    malformed = sorted(name for name in types if not EVENT_TYPE_NAME.fullmatch(name))
    if malformed:
        raise ConfigError(f"{where}: {', '.join(map(repr, malformed))} is no event type (<noun>.<verb>)")
    return frozenset(types)


class Notifier(abc.ABC):
    """Receives events from the dispatcher, after the transaction that recorded them committed.

    Subclasses set ``name`` (listed in ``plugins.notifiers``) and take their ``[plugins.settings.<name>]``
    table as ``settings``; ``retry_base``, ``retry_max`` and ``retry_period`` there (durations) set how the
    dispatcher retries them. ``notify`` makes one delivery attempt: raise to have it retried (with the same
    event: same ``event_id``); return once delivered. Deliveries are at least once, so a receiver must
    tolerate a duplicate. A notifier that sends to several places overrides ``subscriptions``.
    """

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self.retry = Retry.from_settings(settings, f"plugins.settings.{self.name}")

    def subscriptions(self) -> list[Subscription]:
        """Where this notifier's events go, each with its own position and retries; by default one stream,
        named after the notifier, with every event."""
        return [Subscription(self.name, self.notify, retry=self.retry)]

    @abc.abstractmethod
    async def notify(self, event: Event) -> None:
        """Deliver one event (one attempt); raise when it was not delivered."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the notifier opened (HTTP clients…) when the worker stops."""
