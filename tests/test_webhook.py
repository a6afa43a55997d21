"""The webhook notifier's settings and signatures, without a database: config errors name the key, names
never show a url's path, and a signature checks out with the Standard Webhooks reference library."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from wvs_core.errors import ConfigError
from wvs_core.events import Event
from wvs_webhook import WebhookNotifier
from wvs_webhook.signing import headers, secret_key

EVENT = Event(
    event_id=42,
    type="task.dead",
    ts=datetime(2026, 12, 1, tzinfo=UTC),
    wsid="demo",
    task_id=None,
    actor={"type": "scheduler"},
    request_id="r-1",
    data={"op": "snapshot_create", "error": {"reason": "QUIESCE_TIMEOUT"}},
)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"url": "ftp://x/y", "secret": "s"}, "url must be an http"),
        (
            {"url": "http://x/y", "secret": "whsec_not base64!"},
            r"endpoints\[0\].secret: a whsec_ secret must be base64",
        ),
        ({"url": "http://x/y", "secret": ""}, r"endpoints\[0\].secret: a webhook secret must not be empty"),
        ({"url": "http://x/y", "secret": "s", "events": ["task exploded"]}, "'task exploded' is no event type"),
        ({"url": "http://x/y", "secret": "s", "colour": "red"}, "colour"),
        ({"url": "http://x/y", "secret": "s", "retry_base": "soon"}, "not a duration"),
    ],
)
def test_bad_settings_stop_the_worker_naming_the_key(endpoint: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WebhookNotifier({"endpoints": [endpoint]})


def test_subscriptions_one_per_endpoint_named_without_the_urls_path() -> None:
    notifier = WebhookNotifier(
        {
            "retry_base": "2s",
            "endpoints": [
                {"url": "https://hooks.example.com/services/T0/B0/sEcReT", "secret": "s", "events": ["task.dead"]},
                {"url": "http://10.0.0.7:9000/in", "secret": "s", "name": "pager", "retry_period": "1h"},
            ],
        }
    )
    first, second = notifier.subscriptions()
    assert first.name.startswith("webhook:hooks.example.com-") and "sEcReT" not in first.name
    assert first.types == frozenset({"task.dead"}) and first.wants(EVENT)
    assert second.name == "pager" and second.types is None
    assert (first.retry.base, first.retry.max, first.retry.period) == (2, 600, 86400)
    assert (second.retry.base, second.retry.period) == (2, 3600)
    assert [first.retry.delay(n) for n in (1, 2, 3, 11)] == [2, 4, 8, 600]


@pytest.mark.parametrize("secret", ["whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(), "raw"])
def test_signatures_check_out_with_the_reference_library(secret: str) -> None:
    body = b'{"event_id":42}'
    signed = headers(secret_key(secret), "42", 1_764_547_200, body)
    assert signed["webhook-id"] == "42" and signed["webhook-timestamp"] == "1764547200"
    key = secret_key(secret)
    expected = base64.b64encode(hmac.new(key, b"42.1764547200." + body, hashlib.sha256).digest()).decode()
    assert signed["webhook-signature"] == f"v1,{expected}"
    reference = Webhook(secret if secret.startswith("whsec_") else secret.encode())
    with pytest.raises(Exception, match="timestamp"):  # the reference refuses an old timestamp...
        reference.verify(body, signed)
    fresh = headers(key, "42", int(datetime.now(UTC).timestamp()), body)
    assert reference.verify(body, fresh) == {"event_id": 42}  # ... and accepts a fresh one
