"""The ``jsonl`` notifier: every event appended to a file as one JSON line, fsync'd before it counts as delivered.

```toml
[plugins]
notifiers = ["log", "jsonl"]

[plugins.settings.jsonl]
path = "/var/log/wvs/events.jsonl"   # absolute; created (mode 0600) when missing
events = ["task.dead", "current.changed"]   # optional: only these types (default: every event)
retry_base = "1s"                    # optional, as for every notifier: how a failed append is retried
```

Delivery is at least once: after a crash the same event (same ``event_id``) may be appended again, so a
reader keeps the first line of each ``event_id``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from wvs_core.convert import describe_error, structure
from wvs_core.errors import ConfigError
from wvs_core.fsutil import fsync_dir
from wvs_core.notifier import Event, Notifier, Subscription, check_event_types

_RETRY_KEYS = ("retry_base", "retry_max", "retry_period")  # read by Notifier itself


def _absolute(_instance: object, _attribute: object, value: str) -> None:
    if not Path(value).is_absolute():
        raise ValueError(f"path must be absolute, got {value!r}")


@attrs.frozen
class JsonlSettings:
    """``[plugins.settings.jsonl]`` (besides the retry keys)."""

    path: str = attrs.field(validator=_absolute)
    events: tuple[str, ...] | None = None  # None: every event type


class JsonlNotifier(Notifier):
    """Appends each event (``Event.to_json()``) to ``path`` as one line; see the module's docstring."""

    name = "jsonl"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        where = f"plugins.settings.{self.name}"
        own = {key: value for key, value in settings.items() if key not in _RETRY_KEYS}
        try:
            parsed = structure(own, JsonlSettings)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            raise ConfigError(f"invalid {where}: {describe_error(error)}") from None
        self.path = Path(parsed.path)
        self.types = None if parsed.events is None else check_event_types(parsed.events, f"{where}.events")
        self._lock = asyncio.Lock()  # the dispatcher delivers several workspaces' events at once

    def subscriptions(self) -> list[Subscription]:
        """One stream, limited to ``events`` when set."""
        return [Subscription(self.name, self.notify, types=self.types, retry=self.retry)]

    async def notify(self, event: Event) -> None:
        """Append the event's line and fsync it; a failed append leaves no partial line behind and raises."""
        line = json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
        async with self._lock:
            await asyncio.to_thread(_append, self.path, line.encode())


def _append(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd, created = os.open(path, flags), False
    except FileNotFoundError:
        fd, created = os.open(path, flags | os.O_CREAT, 0o600), True
    try:
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # the retry appends the whole line again
            raise
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
