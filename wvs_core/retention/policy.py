"""A retention policy and the plan it makes: which snapshots of a workspace to keep, and why, and which to drop.

The rules are restic's ``forget --keep-*`` rules, applied as restic's ``ApplyPolicy`` applies them
(https://github.com/restic/restic, ``internal/data/snapshot_policy.go`` as of commit a80be147;
``internal/restic/snapshot_policy.go`` until the 2025 move), and checked against restic's own golden files
(``tests/test_retention_restic.py``):

- snapshots are taken **newest first**; a counting rule (``keep_last``, ``keep_hourly`` … ``keep_yearly``)
  keeps a snapshot when it opens a new bucket of that rule (an hour, a day, an ISO week, a month, a year;
  for ``keep_last`` every snapshot is a bucket of its own) and the rule still has a count left; so the
  snapshot a bucket keeps is its newest, and only snapshots a rule keeps use up its count;
- ``-1`` is "unlimited": every bucket is kept; ``0`` or no value turns the rule off;
- the **oldest** snapshot is also kept by every counting rule that still has a count left even when its
  bucket was already taken (reason ``oldest <rule> snapshot``), which keeps the longest history the counts
  allow (restic 0.16; the ``oldest`` prefix since 0.18);
- ``keep_within`` keeps every snapshot made after *the newest snapshot* minus the duration (not after
  *now* minus it: a workspace left alone keeps its last stretch of history), the newest snapshot being
  the newest one not in the future;
- ``keep_labels`` (restic's ``--keep-tag``) keeps every snapshot carrying one of the labels; as in
  restic it is not counted, and a snapshot it keeps still takes its buckets and counts like any other;
- one snapshot may be kept by several rules: every one of them is a reason (restic's ``matches``).

Where WVS differs from restic, on purpose:

- **An empty policy keeps everything.** restic refuses to run ``forget`` without a rule; a plan that
  dropped every snapshot because nothing was configured is the accident to rule out.
- **Protected snapshots** (the current snapshot, those an unfinished task references) are always kept,
  with their reasons, and take no part in the counting rules: the rules are applied to the snapshots that
  may go, so a protection never makes the policy keep fewer of the others. The uncounted rules
  (``keep_labels``, ``keep_within``) still name themselves as reasons for a protected snapshot, and so does
  each counting rule that would keep it were every snapshot counted (restic's way), marked
  ``"last snapshot (not counted: protected)"``: a plan lists every rule that selects a snapshot.
- **Buckets are reckoned in UTC.** restic uses the time zone each snapshot was recorded in; WVS's
  ``created_at`` is an instant that records no zone, and a UTC day is the same day for every operator.
- **Ties of ``created_at``** are ordered by ``snapshot_id``: the greater id counts as the newer (UUIDv7 ids
  grow with creation). restic keeps the input order of ties.
- restic's ``--keep-within-hourly`` … ``--keep-within-yearly`` and ``--keep-tag a,b`` (every tag of a
  list) have no counterpart here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from wvs_core.retention.duration import KeepWithin

UNLIMITED = -1
_LABEL_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")  # SPEC §2: snapshot label keys
_LABEL_VALUE_MAX = 256


def _check_count(_instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < UNLIMITED:
        raise ValueError(f"{attribute.name} must be a count, 0 (off) or -1 (unlimited), got {value}")


def _check_within(_instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            KeepWithin.parse(value)
        except ValueError as error:
            raise ValueError(f"{attribute.name}: {error}") from None


def _check_labels(_instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for entry in value:
        key, has_value, label_value = entry.partition("=")
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{attribute.name}: {entry!r} is not a label key or key=value")
        if has_value and len(label_value) > _LABEL_VALUE_MAX:
            raise ValueError(f"{attribute.name}: the value of {key!r} is longer than {_LABEL_VALUE_MAX}")


@attrs.frozen
class RetentionPolicy:
    """Which snapshots a workspace keeps. Counts are ``None`` or ``0`` (rule off), ``-1`` (unlimited) or
    positive; ``keep_within`` is a duration such as ``"30d"`` or ``"1y2m"`` (see ``KeepWithin``);
    ``keep_labels`` entries are a label key (any value) or ``key=value``."""

    keep_last: int | None = attrs.field(default=None, validator=_check_count)
    keep_hourly: int | None = attrs.field(default=None, validator=_check_count)
    keep_daily: int | None = attrs.field(default=None, validator=_check_count)
    keep_weekly: int | None = attrs.field(default=None, validator=_check_count)
    keep_monthly: int | None = attrs.field(default=None, validator=_check_count)
    keep_yearly: int | None = attrs.field(default=None, validator=_check_count)
    keep_within: str | None = attrs.field(default=None, validator=_check_within)
    keep_labels: tuple[str, ...] = attrs.field(default=(), validator=_check_labels)

    def within(self) -> KeepWithin | None:
        """``keep_within`` read, or None when not set."""
        return None if self.keep_within is None else KeepWithin.parse(self.keep_within)

    def counts(self) -> list[tuple[str, int]]:
        """The counting rules that are on, in restic's order: ``[(name, count), ...]``, e.g. ``("daily", 7)``."""
        named = [(rule.name, getattr(self, f"keep_{rule.name}")) for rule in _RULES]
        return [(name, count) for name, count in named if count]

    def is_empty(self) -> bool:
        """No rule at all: the policy keeps everything."""
        return not self.counts() and self.keep_within is None and not self.keep_labels

    def describe(self) -> str:
        """One line for people, e.g. ``keep the last 3, 7 daily and all monthly snapshots; every snapshot
        within 30d of the newest; every snapshot labelled pin``."""
        if self.is_empty():
            return "keep everything (no rule set)"
        if self.keep_last == UNLIMITED:
            return "keep every snapshot (keep_last = -1)"
        parts = []
        if counts := self.counts():
            phrases = [_count_phrase(name, count) for name, count in counts]
            parts.append(f"keep {_join(phrases)} snapshots")
        if (within := self.within()) is not None:
            parts.append(f"every snapshot within {within} of the newest")
        if self.keep_labels:
            parts.append(f"every snapshot labelled {_join(list(self.keep_labels), 'or')}")
        if not counts:
            parts[0] = f"keep {parts[0]}"
        return "; ".join(parts)


def _count_phrase(name: str, count: int) -> str:
    if name == "last":
        return f"the last {count}"
    return f"all {name}" if count == UNLIMITED else f"{count} {name}"


def _join(phrases: list[str], word: str = "and") -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} {word} {phrases[-1]}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a time must carry its time zone, got {value.isoformat()}")
    return value.astimezone(UTC)


@attrs.frozen
class Candidate:
    """A snapshot as retention sees it."""

    snapshot_id: str
    created_at: datetime = attrs.field(converter=_utc)  # aware; bucketed in UTC
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Protection:
    """A snapshot that must not go, and why (``"current"``, ``"referenced by task <task_id>"``)."""

    snapshot_id: str
    reason: str


@attrs.frozen
class Kept:
    """A snapshot the plan keeps, with every rule that keeps it."""

    snapshot_id: str
    reasons: tuple[str, ...]


@attrs.frozen
class Dropped:
    """A snapshot the plan drops."""

    snapshot_id: str


@attrs.frozen
class Plan:
    """Every snapshot, newest first, in ``keep`` or in ``drop``; unstructured it is the body of
    ``GET …/retention:plan`` (SPEC §2)."""

    keep: tuple[Kept, ...]
    drop: tuple[Dropped, ...]


@attrs.frozen
class _Rule:
    name: str
    bucket: Callable[[datetime, int], Hashable]  # restic's "bucker": (time, position newest first) -> bucket


# restic's buckets, in its order: always, ymdh, ymd, yw (ISO year and week), ym, y.
_RULES = (
    _Rule("last", lambda _when, position: position),
    _Rule("hourly", lambda when, _position: (when.year, when.month, when.day, when.hour)),
    _Rule("daily", lambda when, _position: (when.year, when.month, when.day)),
    _Rule("weekly", lambda when, _position: when.isocalendar()[:2]),
    _Rule("monthly", lambda when, _position: (when.year, when.month)),
    _Rule("yearly", lambda when, _position: when.year),
)


@attrs.define
class _Counter:
    """One counting rule during a plan: what is left of its count and the bucket it kept last."""

    rule: _Rule
    left: int  # -1: unlimited
    last_bucket: Hashable = None

    def take(self, when: datetime, position: int, oldest: bool) -> str | None:
        """The reason this rule keeps the snapshot, or None (restic ``ApplyPolicy``'s bucket loop)."""
        if self.left == 0:
            return None
        bucket = self.rule.bucket(when, position)
        if bucket == self.last_bucket and not oldest:
            return None
        reason = f"{self.rule.name} snapshot"
        if bucket == self.last_bucket:
            reason = f"oldest {reason}"
        self.last_bucket = bucket
        if self.left > 0:
            self.left -= 1
        return reason


def plan(
    snapshots: Iterable[Candidate], policy: RetentionPolicy, now: datetime, protected: Iterable[Protection] = ()
) -> Plan:
    """Apply ``policy`` to a workspace's ``snapshots`` (see the module's docstring for the rules).

    ``now`` only decides which snapshots are in the future (they cannot be the newest ``keep_within``
    counts from); ``protected`` snapshots are always kept, a snapshot may be protected for several reasons,
    and a protection naming a snapshot not in ``snapshots`` is ignored. Changes nothing, reads no clock."""
    now = _utc(now)
    ordered = sorted(snapshots, key=lambda snapshot: (snapshot.created_at, snapshot.snapshot_id), reverse=True)
    if len({snapshot.snapshot_id for snapshot in ordered}) != len(ordered):
        raise ValueError("a snapshot id is given twice")
    guarded: dict[str, list[str]] = {}
    for protection in protected:
        guarded.setdefault(protection.snapshot_id, []).append(f"protected: {protection.reason}")

    reasons = {snapshot.snapshot_id: list(guarded.get(snapshot.snapshot_id, ())) for snapshot in ordered}
    if policy.is_empty():
        for snapshot in ordered:
            reasons[snapshot.snapshot_id].append(_EVERYTHING)
    for entry in policy.keep_labels:
        for snapshot in ordered:
            if _has_label(snapshot.labels, entry):
                reasons[snapshot.snapshot_id].append(f"has label {entry}")
    if (within := policy.within()) is not None:
        start = _within_start(ordered, within, now)
        for snapshot in ordered:
            if start is None or snapshot.created_at > start:
                reasons[snapshot.snapshot_id].append(f"within {within}")

    droppable = [snapshot for snapshot in ordered if snapshot.snapshot_id not in guarded]
    for snapshot, reason in _counted(droppable, policy):
        reasons[snapshot.snapshot_id].append(reason)
    for snapshot, reason in _counted(ordered, policy):  # what the counting rules say of the protected ones
        if snapshot.snapshot_id in guarded:
            reasons[snapshot.snapshot_id].append(f"{reason} (not counted: protected)")

    keep = tuple(Kept(s.snapshot_id, tuple(reasons[s.snapshot_id])) for s in ordered if reasons[s.snapshot_id])
    drop = tuple(Dropped(s.snapshot_id) for s in ordered if not reasons[s.snapshot_id])
    return Plan(keep=keep, drop=drop)


_EVERYTHING = "empty policy: keep everything"


def _counted(ordered: list[Candidate], policy: RetentionPolicy) -> Iterable[tuple[Candidate, str]]:
    """Each (snapshot, reason) of the counting rules applied to ``ordered`` (newest first) alone."""
    counters = [_Counter(rule, count) for rule in _RULES if (count := getattr(policy, f"keep_{rule.name}"))]
    for position, snapshot in enumerate(ordered):
        oldest = position == len(ordered) - 1
        for counter in counters:
            if reason := counter.take(snapshot.created_at, position, oldest):
                yield snapshot, reason


def _within_start(ordered: list[Candidate], within: KeepWithin, now: datetime) -> datetime | None:
    """The instant ``keep_within`` keeps the snapshots after; None: every snapshot is within.
    restic's ``findLatestTimestamp``: the newest snapshot (protected or not) made before ``now``; when there
    is none, restic counts back from year 1 and every snapshot is within, and so does this."""
    newest = next((snapshot.created_at for snapshot in ordered if snapshot.created_at < now), None)
    return None if newest is None else within.start(newest)


def _has_label(labels: Mapping[str, str], entry: str) -> bool:
    key, has_value, value = entry.partition("=")
    return key in labels and (not has_value or labels[key] == value)
