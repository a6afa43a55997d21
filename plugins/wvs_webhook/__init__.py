"""The ``webhook`` notifier: each event POSTed as JSON to every configured endpoint, signed per Standard
Webhooks. Every endpoint is a subscription of its own: its own position, its own retries.

```toml
[plugins.settings.webhook]
retry_base = "1s"        # then doubling ...
retry_max = "10m"        # ... up to this between attempts ...
retry_period = "24h"     # ... for this long after the first attempt; then the event is given up
endpoints = [
  { url = "https://hooks.example.com/wvs", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", events = ["task.dead"] },
  { url = "http://10.0.0.7:9000/in", secret = "a raw secret", name = "ops", timeout = "30s", retry_period = "1h" },
]
```
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import cattrs
import httpx
from prometheus_client import Counter

from wvs_core import hookimpl
from wvs_core.convert import Seconds, describe_error, structure
from wvs_core.errors import ConfigError
from wvs_core.notifier import Event, Notifier, Retry, Subscription, check_event_types
from wvs_webhook.signing import headers, secret_key

DELIVERIES = Counter(
    "wvs_webhook_deliveries_total",
    "Webhook POSTs by outcome: delivered (2xx), rejected (any other status), unreachable (connection, timeout).",
    ["outcome"],
)
USER_AGENT = "wvs-webhook/1"


class WebhookFailed(Exception):
    """One POST did not get a 2xx answer (the dispatcher retries)."""


def _check_url(_instance: object, _attribute: object, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an http:// or https:// URL, got {value[:80]!r}")


@attrs.frozen
class EndpointSettings:
    """One ``endpoints`` entry. ``name`` (default: ``webhook:<host>-<hash of the url>``) keys its position:
    keep it when the url changes to carry on where the old one stopped."""

    url: str = attrs.field(validator=_check_url)
    secret: str
    events: tuple[str, ...] | None = None  # None: every event type
    name: str | None = None
    timeout: Seconds = Seconds(10.0)  # per POST
    retry_base: Seconds | None = None  # unset: the webhook table's
    retry_max: Seconds | None = None
    retry_period: Seconds | None = None


@attrs.frozen
class WebhookSettings:
    """``[plugins.settings.webhook]``."""

    endpoints: list[EndpointSettings] = attrs.field(factory=list)
    retry_base: Seconds = Seconds(1.0)
    retry_max: Seconds = Seconds(600.0)
    retry_period: Seconds = Seconds(86400.0)


class Endpoint:
    """Delivers to one URL."""

    def __init__(self, settings: EndpointSettings, notifier: WebhookNotifier, where: str) -> None:
        self.url = settings.url
        self.timeout = settings.timeout
        self.notifier = notifier
        try:
            self.key = secret_key(settings.secret)
        except ValueError as error:
            raise ConfigError(f"{where}.secret: {error}") from None
        self.types = None if settings.events is None else check_event_types(settings.events, f"{where}.events")
        # The url's path may hold a token (chat webhooks do): names, logs and metrics never show it.
        digest = hashlib.sha256(settings.url.encode()).hexdigest()[:8]
        self.name = settings.name or f"webhook:{urlsplit(settings.url).hostname}-{digest}"
        own = {key: value for key in ("retry_base", "retry_max", "retry_period") if (value := getattr(settings, key))}
        self.retry = Retry.from_settings({**notifier.settings, **own}, where)

    async def deliver(self, event: Event) -> None:
        """POST the event once; raise WebhookFailed unless the answer is 2xx."""
        body = json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
        signed = headers(self.key, str(event.event_id), int(time.time()), body)
        try:
            response = await self.notifier.client().post(
                self.url,
                content=body,
                headers={**signed, "content-type": "application/json", "user-agent": USER_AGENT},
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            DELIVERIES.labels("unreachable").inc()
            raise WebhookFailed(f"{self.name} unreachable: {type(error).__name__}") from None
        if not response.is_success:
            DELIVERIES.labels("rejected").inc()
            raise WebhookFailed(f"{self.name} answered HTTP {response.status_code}")
        DELIVERIES.labels("delivered").inc()


class WebhookNotifier(Notifier):
    """POSTs events to ``endpoints``; see the module's docstring for the settings."""

    name = "webhook"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        where = f"plugins.settings.{self.name}"
        try:
            parsed = structure(dict(settings), WebhookSettings)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            raise ConfigError(f"invalid {where}: {describe_error(error)}") from None
        self.endpoints = [Endpoint(e, self, f"{where}.endpoints[{i}]") for i, e in enumerate(parsed.endpoints)]
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """One HTTP client for every endpoint, made in the running event loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def subscriptions(self) -> list[Subscription]:
        """One per endpoint."""
        return [Subscription(e.name, e.deliver, types=e.types, retry=e.retry) for e in self.endpoints]

    async def notify(self, event: Event) -> None:
        """One attempt to every endpoint that wants ``event`` (the dispatcher uses ``subscriptions``)."""
        for endpoint in self.endpoints:
            if endpoint.types is None or event.type in endpoint.types:
                await endpoint.deliver(event)

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@hookimpl(trylast=True)
def wvs_register_notifiers() -> list[type[Notifier]]:
    """Provide ``webhook``."""
    return [WebhookNotifier]
