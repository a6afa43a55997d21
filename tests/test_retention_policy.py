"""The retention policy engine: a year of snapshots against a hand-computed table, keep_within, protected
snapshots, labels, the empty policy, and the policy's structure and validation (restic's own cases:
``test_retention_restic.py``)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import cattrs
import pytest

from wvs_core.convert import describe_error, structure, structure_request, unstructure
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.retention import Candidate, KeepWithin, Kept, Plan, Protection, RetentionPolicy, plan

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _snapshots(*times: str, labels: dict[str, dict[str, str]] | None = None) -> list[Candidate]:
    """One snapshot per time, its id the time itself."""
    return [Candidate(time, _at(time), (labels or {}).get(time, {})) for time in times]


def _kept(result: Plan) -> dict[str, list[str]]:
    return {entry.snapshot_id: list(entry.reasons) for entry in result.keep}


# -- a year of snapshots ------------------------------------------------------------------------------------


def _a_year() -> list[Candidate]:
    """2025-01-05 … 2026-01-03, four snapshots a day at 00, 06, 12 and 18 h, minute (3·day + 7·slot) % 60;
    none in August and September 2025 nor on 2025-12-30; 2026-01-01 only at 06 h; 2026-01-03 at 00, 06 and
    twice at 12:23 (same created_at, ids ``…a`` and ``…b``). An id is the time, ``YYYY-MM-DD HH:MM``."""
    snapshots = []
    day = date(2025, 1, 5)
    while day <= date(2026, 1, 3):
        if not date(2025, 8, 1) <= day <= date(2025, 9, 30) and day != date(2025, 12, 30):
            for slot in {date(2026, 1, 1): (1,), date(2026, 1, 3): (0, 1, 2)}.get(day, (0, 1, 2, 3)):
                at = datetime(day.year, day.month, day.day, 6 * slot, (3 * day.day + 7 * slot) % 60, tzinfo=UTC)
                snapshots.append(Candidate(f"{at:%Y-%m-%d %H:%M}", at, {}))
        day += timedelta(days=1)
    twins = [s for s in snapshots if s.snapshot_id == "2026-01-03 12:23"]
    snapshots.remove(twins[0])
    snapshots += [Candidate(f"{twins[0].snapshot_id} {suffix}", twins[0].created_at, {}) for suffix in "ab"]
    return snapshots


# Worked out by hand from the schedule above, newest first. ISO week 2026-W01 runs Mon 2025-12-29 …
# Sun 2026-01-04, so it spans the new year; Sundays before it: 12-28, 12-21, 12-14, 12-07. Of the twins
# "b" is the newer (greater id). Eleven months have snapshots (no Aug, Sep), so keep_monthly=12 has one
# count left at the oldest snapshot, whose month is taken already: "oldest monthly snapshot".
A_YEAR_KEPT = {
    "2026-01-03 12:23 b": ["last snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"],
    "2026-01-03 12:23 a": ["last snapshot"],
    "2026-01-03 06:16": ["last snapshot"],
    "2026-01-02 18:27": ["daily snapshot"],
    "2026-01-01 06:10": ["daily snapshot"],  # the day's only snapshot
    "2025-12-31 18:54": ["daily snapshot", "monthly snapshot", "yearly snapshot"],
    # 12-30: no snapshot, so the seven days reach back to 12-27
    "2025-12-29 18:48": ["daily snapshot"],
    "2025-12-28 18:45": ["daily snapshot", "weekly snapshot"],  # 2025-W52
    "2025-12-27 18:42": ["daily snapshot"],
    "2025-12-21 18:24": ["weekly snapshot"],  # W51
    "2025-12-14 18:03": ["weekly snapshot"],  # W50
    "2025-12-07 18:42": ["weekly snapshot"],  # W49: the fifth week
    "2025-11-30 18:51": ["monthly snapshot"],
    "2025-10-31 18:54": ["monthly snapshot"],
    "2025-07-31 18:54": ["monthly snapshot"],
    "2025-06-30 18:51": ["monthly snapshot"],
    "2025-05-31 18:54": ["monthly snapshot"],
    "2025-04-30 18:51": ["monthly snapshot"],
    "2025-03-31 18:54": ["monthly snapshot"],
    "2025-02-28 18:45": ["monthly snapshot"],
    "2025-01-31 18:54": ["monthly snapshot"],  # the eleventh month
    "2025-01-05 00:15": ["oldest monthly snapshot"],
}


def test_a_year_of_snapshots_against_the_hand_computed_table() -> None:
    snapshots = _a_year()
    assert len(snapshots) == 300 * 4 + 1 + 4  # 302 days with snapshots, two of them partial
    policy = RetentionPolicy(keep_last=3, keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=2)

    result = plan(snapshots, policy, NOW)

    assert _kept(result) == A_YEAR_KEPT
    assert list(_kept(result)) == list(A_YEAR_KEPT)  # newest first
    assert len(result.drop) == len(snapshots) - len(A_YEAR_KEPT)
    assert [entry.snapshot_id for entry in result.drop][:3] == [
        "2026-01-03 00:09",
        "2026-01-02 12:20",
        "2026-01-02 06:13",
    ]


def test_the_plan_does_not_depend_on_the_order_snapshots_are_given_in() -> None:
    snapshots = _a_year()
    policy = RetentionPolicy(keep_last=3, keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=2)
    random.Random(7).shuffle(snapshots)
    assert plan(snapshots, policy, NOW) == plan(sorted(snapshots, key=lambda s: s.created_at), policy, NOW)


def test_unlimited_counts_keep_every_bucket() -> None:
    snapshots = _a_year()
    assert len(plan(snapshots, RetentionPolicy(keep_last=-1), NOW).keep) == len(snapshots)
    monthly = plan(snapshots, RetentionPolicy(keep_monthly=-1), NOW)
    assert [entry.snapshot_id for entry in monthly.keep][-2:] == ["2025-01-31 18:54", "2025-01-05 00:15"]
    assert monthly.keep[-1].reasons == ("oldest monthly snapshot",)  # -1 always has a count left
    assert len(monthly.keep) == 11 + 1


# -- keep_within --------------------------------------------------------------------------------------------


def test_keep_within_counts_back_from_the_newest_snapshot_not_from_now() -> None:
    times = [f"2025-03-{day:02d} 12:00" for day in range(1, 32)]
    snapshots = _snapshots(*times, "2025-03-03 12:00:00.000001")
    # 1m before 03-31 12:00 is "02-31 12:00", which Go's AddDate (and restic) normalizes to 03-03 12:00.
    result = plan(snapshots, RetentionPolicy(keep_within="1m"), now=datetime(2025, 9, 1, tzinfo=UTC))

    assert set(_kept(result)) == {*times[3:], "2025-03-03 12:00:00.000001"}
    assert {reason for reasons in _kept(result).values() for reason in reasons} == {"within 1m"}
    assert [entry.snapshot_id for entry in result.drop] == ["2025-03-03 12:00", "2025-03-02 12:00", "2025-03-01 12:00"]


def test_keep_within_ignores_snapshots_from_the_future_when_finding_the_newest() -> None:
    snapshots = _snapshots("2025-08-31 12:00", "2025-08-20 12:00", "2025-08-10 12:00", "2025-09-20 12:00")
    result = plan(snapshots, RetentionPolicy(keep_within="14d"), now=datetime(2025, 9, 1, tzinfo=UTC))
    # Counted from 08-31, not from 09-20; the future snapshot is after the start, so it is kept too.
    assert set(_kept(result)) == {"2025-09-20 12:00", "2025-08-31 12:00", "2025-08-20 12:00"}

    everything_ahead = plan(snapshots, RetentionPolicy(keep_within="1d"), now=datetime(2025, 1, 1, tzinfo=UTC))
    assert not everything_ahead.drop  # no snapshot before now: restic counts from year 1


def test_keep_within_longer_than_the_calendar_keeps_everything() -> None:
    snapshots = _snapshots("0002-01-01 00:00", "2025-01-01 00:00")
    assert not plan(snapshots, RetentionPolicy(keep_within="9999y"), NOW).drop


# -- protected snapshots and labels -------------------------------------------------------------------------


def test_protected_snapshots_are_kept_for_their_reasons_and_not_counted() -> None:
    snapshots = _snapshots("2025-05-01 10:00", "2025-05-02 10:00", "2025-05-03 10:00", "2025-05-04 10:00")
    protected = [
        Protection("2025-05-04 10:00", "current"),
        Protection("2025-05-01 10:00", "referenced by task t-1"),
        Protection("2025-05-01 10:00", "referenced by task t-2"),
        Protection("1999-01-01 00:00", "a snapshot not in the list"),
    ]

    result = plan(snapshots, RetentionPolicy(keep_last=2, keep_within="1d"), NOW, protected)

    # keep_last=2 goes to the two unprotected snapshots; keep_within (uncounted) names itself on the newest, and
    # keep_last, which would keep it were it counted, says so without taking one of its two.
    assert _kept(result) == {
        "2025-05-04 10:00": ["protected: current", "within 1d", "last snapshot (not counted: protected)"],
        "2025-05-03 10:00": ["last snapshot"],
        "2025-05-02 10:00": ["last snapshot"],
        "2025-05-01 10:00": ["protected: referenced by task t-1", "protected: referenced by task t-2"],
    }


def test_protection_keeps_what_the_policy_alone_would_drop() -> None:
    snapshots = _snapshots("2025-05-01 10:00", "2025-05-02 10:00", "2025-05-03 10:00")
    alone = plan(snapshots, RetentionPolicy(keep_daily=1), NOW)
    assert [entry.snapshot_id for entry in alone.drop] == ["2025-05-02 10:00", "2025-05-01 10:00"]

    result = plan(snapshots, RetentionPolicy(keep_daily=1), NOW, [Protection("2025-05-01 10:00", "current")])
    assert _kept(result) == {"2025-05-03 10:00": ["daily snapshot"], "2025-05-01 10:00": ["protected: current"]}


def test_labelled_snapshots_are_kept_and_still_counted_as_restic_does_with_tags() -> None:
    labels = {"2025-05-03 10:00": {"pin": "yes"}, "2025-05-01 10:00": {"pin": "no", "env": "prod"}}
    snapshots = _snapshots("2025-05-01 10:00", "2025-05-02 10:00", "2025-05-03 10:00", labels=labels)

    result = plan(snapshots, RetentionPolicy(keep_daily=2, keep_labels=("pin=yes",)), NOW)
    assert _kept(result) == {
        "2025-05-03 10:00": ["has label pin=yes", "daily snapshot"],  # takes one of the two days
        "2025-05-02 10:00": ["daily snapshot"],
    }

    by_key = plan(snapshots, RetentionPolicy(keep_labels=("pin", "env=prod")), NOW)
    assert _kept(by_key) == {
        "2025-05-03 10:00": ["has label pin"],
        "2025-05-01 10:00": ["has label pin", "has label env=prod"],
    }


# -- the empty policy, ties, edges --------------------------------------------------------------------------


def test_an_empty_policy_keeps_everything() -> None:
    snapshots = _snapshots("2025-05-01 10:00", "2025-05-02 10:00")
    for policy in (RetentionPolicy(), RetentionPolicy(keep_last=0, keep_daily=0), structure({}, RetentionPolicy)):
        assert policy.is_empty()
        result = plan(snapshots, policy, NOW, [Protection("2025-05-01 10:00", "current")])
        assert not result.drop
        assert _kept(result) == {
            "2025-05-02 10:00": ["empty policy: keep everything"],
            "2025-05-01 10:00": ["protected: current", "empty policy: keep everything"],
        }
    assert plan([], RetentionPolicy(keep_last=1), NOW) == Plan(keep=(), drop=())


def test_ties_of_created_at_are_ordered_by_snapshot_id() -> None:
    at = _at("2025-05-01 10:00")
    snapshots = [Candidate("0197-b", at, {}), Candidate("0197-c", at, {}), Candidate("0197-a", at, {})]
    result = plan(snapshots, RetentionPolicy(keep_last=1), NOW)
    assert result.keep == (Kept("0197-c", ("last snapshot",)),)
    assert [entry.snapshot_id for entry in result.drop] == ["0197-b", "0197-a"]


def test_times_are_bucketed_in_utc() -> None:
    # 23:30 at UTC-05:00 on 05-01 is 04:30 UTC on 05-02: the same UTC day as the snapshot after it.
    late = Candidate("late", datetime.fromisoformat("2025-05-01T23:30:00-05:00"), {})
    later = Candidate("later", _at("2025-05-02 08:00"), {})
    assert late.created_at == _at("2025-05-02 04:30")
    result = plan([late, later], RetentionPolicy(keep_daily=2), NOW)
    assert _kept(result) == {"later": ["daily snapshot"], "late": ["oldest daily snapshot"]}


def test_naive_times_and_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Candidate("s", datetime(2025, 5, 1), {})
    with pytest.raises(ValueError, match="time zone"):
        plan([], RetentionPolicy(), datetime(2025, 5, 1))
    with pytest.raises(ValueError, match="twice"):
        plan(_snapshots("2025-05-01 10:00") * 2, RetentionPolicy(), NOW)


def test_the_plan_unstructures_to_the_retention_plan_body() -> None:
    result = plan(_snapshots("2025-05-01 10:00", "2025-05-02 10:00"), RetentionPolicy(keep_last=1), NOW)
    assert unstructure(result) == {
        "keep": [{"snapshot_id": "2025-05-02 10:00", "reasons": ["last snapshot"]}],
        "drop": [{"snapshot_id": "2025-05-01 10:00"}],
    }


# -- structure, validation, description ---------------------------------------------------------------------


def test_a_policy_structures_from_config_and_round_trips() -> None:
    data = {"keep_last": 3, "keep_daily": 7, "keep_monthly": -1, "keep_within": "1y2m", "keep_labels": ["pin"]}
    policy = structure(data, RetentionPolicy)
    assert policy == RetentionPolicy(
        keep_last=3, keep_daily=7, keep_monthly=-1, keep_within="1y2m", keep_labels=("pin",)
    )
    assert policy.within() == KeepWithin(years=1, months=2)
    assert structure(unstructure(policy), RetentionPolicy) == policy
    assert structure({"keep_daily": "7"}, RetentionPolicy).keep_daily == 7  # config text, e.g. from the env


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"keep_daily": -2}, "keep_daily must be a count, 0 (off) or -1 (unlimited), got -2"),
        ({"keep_dayly": 7}, "extra fields found (keep_dayly)"),
        ({"keep_last": "three"}, "expected an integer, got 'three' @ keep_last"),
        ({"keep_within": "30x"}, "keep_within: '30x' is not a duration"),
        ({"keep_within": "30"}, "keep_within: '30' is not a duration"),
        ({"keep_within": "-1d"}, "keep_within: '-1d' is not a duration"),
        ({"keep_within": "1d2d"}, "keep_within: '1d2d' gives the unit 'd' twice"),
        ({"keep_within": "0d"}, "keep_within: '0d' is zero"),
        ({"keep_within": 30}, "expected a string, got int @ keep_within"),
        ({"keep_labels": "pin"}, "expected a list, got str @ keep_labels"),
        ({"keep_labels": ["Pin"]}, "keep_labels: 'Pin' is not a label key or key=value"),
        ({"keep_labels": ["=x"]}, "keep_labels: '=x' is not a label key or key=value"),
        ({"keep_labels": ["pin=" + "x" * 257]}, "keep_labels: the value of 'pin' is longer than 256"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(cattrs.BaseValidationError) as caught:
        structure(data, RetentionPolicy)
    assert message in describe_error(caught.value)


def test_a_request_body_takes_json_types_only() -> None:
    with pytest.raises(WVSError) as caught:
        structure_request({"keep_daily": "7"}, RetentionPolicy)
    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert "keep_daily" in caught.value.message


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        (RetentionPolicy(), "keep everything (no rule set)"),
        (RetentionPolicy(keep_last=0), "keep everything (no rule set)"),
        (
            RetentionPolicy(keep_last=3, keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=2),
            "keep the last 3, 7 daily, 5 weekly, 12 monthly and 2 yearly snapshots",
        ),
        (RetentionPolicy(keep_last=-1, keep_daily=7), "keep every snapshot (keep_last = -1)"),
        (
            RetentionPolicy(keep_daily=7, keep_monthly=-1, keep_within="30d", keep_labels=("pin", "env=prod")),
            "keep 7 daily and all monthly snapshots; every snapshot within 30d of the newest; "
            "every snapshot labelled pin or env=prod",
        ),
        (RetentionPolicy(keep_within="1y1d1m"), "keep every snapshot within 1y1m1d of the newest"),
    ],
)
def test_describe_is_one_line(policy: RetentionPolicy, line: str) -> None:
    assert policy.describe() == line


@pytest.mark.parametrize(
    ("text", "within"),
    [
        ("30d", KeepWithin(days=30)),
        (" 1y2m ", KeepWithin(years=1, months=2)),
        ("3h1y", KeepWithin(years=1, hours=3)),
        ("13d23h", KeepWithin(days=13, hours=23)),
    ],
)
def test_keep_within_reads_restics_format(text: str, within: KeepWithin) -> None:
    assert KeepWithin.parse(text) == within
    assert KeepWithin.parse(str(within)) == within


@pytest.mark.parametrize("text", ["", "d", "30", "1w", "30 d", "1.5d", "-1d", "1d2d", "0y0d"])
def test_keep_within_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        KeepWithin.parse(text)


def test_keep_within_subtracts_like_gos_add_date() -> None:
    newest = _at("2024-03-31 12:00")
    assert KeepWithin(months=1).start(newest) == _at("2024-03-02 12:00")  # "02-31" in a leap year
    assert KeepWithin(years=1).start(_at("2024-02-29 00:00")) == _at("2023-03-01 00:00")
    assert KeepWithin(days=1, hours=2).start(newest) == _at("2024-03-30 10:00")
    assert KeepWithin(months=14).start(newest) == _at("2023-01-31 12:00")
    assert KeepWithin(years=2025).start(newest) is None
