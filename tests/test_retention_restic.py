"""restic's own ``forget`` policy tests, ported literally: the snapshot list of ``TestApplyPolicy`` and the
golden files ``testdata/policy_keep_snapshots_<n>`` (the kept snapshots, newest first, each with its
``matches``) for the policies WVS has. From restic (https://github.com/restic/restic, commit a80be147,
``internal/data/snapshot_policy_test.go`` and ``internal/data/testdata/``), Copyright (c) 2014, Alexander
Neumann, BSD 2-Clause License.

Translations: a restic tag is a label of that key (value ``"yes"``), ``--keep-tag foo`` is
``keep_labels=["foo"]``, and the reason ``has tags [foo]`` reads ``has label foo``. The golden ``paths``
of one of the five snapshots tied at 2015-10-22 10:20:30 is not compared (WVS snapshots have none), nor are
restic's ``counters``. Not ported: ``_0`` (the empty policy: restic keeps nothing, WVS everything, see
``test_retention_policy.py``), ``_19`` (``--keep-tag foo,bar``: no counterpart), ``_30``…``_35``
(``--keep-within-<bucket>``: no counterpart) and the long lists ``_2``…``_4``, ``_8``, ``_25``, ``_26``,
``_29``, ``_36``…``_38``, which repeat rules the ported ones already cover.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wvs_core.convert import structure
from wvs_core.retention import Candidate, RetentionPolicy, plan

RESTIC_SNAPSHOTS = [
    ("2014-09-01 10:20:30", ""),
    ("2014-09-02 10:20:30", ""),
    ("2014-09-05 10:20:30", ""),
    ("2014-09-06 10:20:30", ""),
    ("2014-09-08 10:20:30", ""),
    ("2014-09-09 10:20:30", ""),
    ("2014-09-10 10:20:30", ""),
    ("2014-09-11 10:20:30", ""),
    ("2014-09-20 10:20:30", ""),
    ("2014-09-22 10:20:30", ""),
    ("2014-08-08 10:20:30", ""),
    ("2014-08-10 10:20:30", ""),
    ("2014-08-12 10:20:30", ""),
    ("2014-08-13 10:20:30", ""),
    ("2014-08-13 10:20:30.1", ""),
    ("2014-08-15 10:20:30", ""),
    ("2014-08-18 10:20:30", ""),
    ("2014-08-20 10:20:30", ""),
    ("2014-08-21 10:20:30", ""),
    ("2014-08-22 10:20:30", ""),
    ("2014-10-01 10:20:30", "foo"),
    ("2014-10-02 10:20:30", "foo"),
    ("2014-10-05 10:20:30", "foo"),
    ("2014-10-06 10:20:30", "foo"),
    ("2014-10-08 10:20:30", "foo"),
    ("2014-10-09 10:20:30", "foo"),
    ("2014-10-10 10:20:30", "foo"),
    ("2014-10-11 10:20:30", "foo"),
    ("2014-10-20 10:20:30", "foo"),
    ("2014-10-22 10:20:30", "foo"),
    ("2014-11-08 10:20:30", "foo"),
    ("2014-11-10 10:20:30", "foo"),
    ("2014-11-12 10:20:30", "foo"),
    ("2014-11-13 10:20:30", "foo"),
    ("2014-11-13 10:20:30.1", "bar"),
    ("2014-11-15 10:20:30", "foo bar"),
    ("2014-11-18 10:20:30", ""),
    ("2014-11-20 10:20:30", ""),
    ("2014-11-21 10:20:30", ""),
    ("2014-11-22 10:20:30", ""),
    ("2015-09-01 10:20:30", ""),
    ("2015-09-02 10:20:30", ""),
    ("2015-09-05 10:20:30", ""),
    ("2015-09-06 10:20:30", ""),
    ("2015-09-08 10:20:30", ""),
    ("2015-09-09 10:20:30", ""),
    ("2015-09-10 10:20:30", ""),
    ("2015-09-11 10:20:30", ""),
    ("2015-09-20 10:20:30", ""),
    ("2015-09-22 10:20:30", ""),
    ("2015-08-08 10:20:30", ""),
    ("2015-08-10 10:20:30", ""),
    ("2015-08-12 10:20:30", ""),
    ("2015-08-13 10:20:30", ""),
    ("2015-08-13 10:20:30.1", ""),
    ("2015-08-15 10:20:30", ""),
    ("2015-08-18 10:20:30", ""),
    ("2015-08-20 10:20:30", ""),
    ("2015-08-21 10:20:30", ""),
    ("2015-08-22 10:20:30", ""),
    ("2015-10-01 10:20:30", ""),
    ("2015-10-02 10:20:30", ""),
    ("2015-10-05 10:20:30", ""),
    ("2015-10-06 10:20:30", ""),
    ("2015-10-08 10:20:30", ""),
    ("2015-10-09 10:20:30", ""),
    ("2015-10-10 10:20:30", ""),
    ("2015-10-11 10:20:30", ""),
    ("2015-10-20 10:20:30", ""),
    ("2015-10-22 10:20:30", ""),
    ("2015-10-22 10:20:30", ""),
    ("2015-10-22 10:20:30", "foo bar"),
    ("2015-10-22 10:20:30", "foo bar"),
    ("2015-10-22 10:20:30", "foo bar"),
    ("2015-11-08 10:20:30", ""),
    ("2015-11-10 10:20:30", ""),
    ("2015-11-12 10:20:30", ""),
    ("2015-11-13 10:20:30", ""),
    ("2015-11-13 10:20:30.1", ""),
    ("2015-11-15 10:20:30", ""),
    ("2015-11-18 10:20:30", ""),
    ("2015-11-20 10:20:30", ""),
    ("2015-11-21 10:20:30", ""),
    ("2015-11-22 10:20:30", ""),
    ("2016-01-01 01:02:03", ""),
    ("2016-01-01 01:03:03", ""),
    ("2016-01-01 07:08:03", ""),
    ("2016-01-03 07:02:03", ""),
    ("2016-01-04 10:23:03", ""),
    ("2016-01-04 11:23:03", ""),
    ("2016-01-04 12:23:03", ""),
    ("2016-01-04 12:24:03", ""),
    ("2016-01-04 12:28:03", ""),
    ("2016-01-04 12:30:03", ""),
    ("2016-01-04 16:23:03", ""),
    ("2016-01-05 09:02:03", ""),
    ("2016-01-06 08:02:03", ""),
    ("2016-01-07 10:02:03", ""),
    ("2016-01-08 20:02:03", ""),
    ("2016-01-09 21:02:03", ""),
    ("2016-01-12 21:02:03", ""),
    ("2016-01-12 21:08:03", ""),
    ("2016-01-18 12:02:03", ""),
]


# number of the golden file: (the policy, [(time, tags, reasons), ...] kept, newest first)
RESTIC_CASES = {
    1: (
        {"keep_last": 10},
        [
            ("2016-01-18 12:02:03", "", ["last snapshot"]),
            ("2016-01-12 21:08:03", "", ["last snapshot"]),
            ("2016-01-12 21:02:03", "", ["last snapshot"]),
            ("2016-01-09 21:02:03", "", ["last snapshot"]),
            ("2016-01-08 20:02:03", "", ["last snapshot"]),
            ("2016-01-07 10:02:03", "", ["last snapshot"]),
            ("2016-01-06 08:02:03", "", ["last snapshot"]),
            ("2016-01-05 09:02:03", "", ["last snapshot"]),
            ("2016-01-04 16:23:03", "", ["last snapshot"]),
            ("2016-01-04 12:30:03", "", ["last snapshot"]),
        ],
    ),
    5: (
        {"keep_hourly": 20},
        [
            ("2016-01-18 12:02:03", "", ["hourly snapshot"]),
            ("2016-01-12 21:08:03", "", ["hourly snapshot"]),
            ("2016-01-09 21:02:03", "", ["hourly snapshot"]),
            ("2016-01-08 20:02:03", "", ["hourly snapshot"]),
            ("2016-01-07 10:02:03", "", ["hourly snapshot"]),
            ("2016-01-06 08:02:03", "", ["hourly snapshot"]),
            ("2016-01-05 09:02:03", "", ["hourly snapshot"]),
            ("2016-01-04 16:23:03", "", ["hourly snapshot"]),
            ("2016-01-04 12:30:03", "", ["hourly snapshot"]),
            ("2016-01-04 11:23:03", "", ["hourly snapshot"]),
            ("2016-01-04 10:23:03", "", ["hourly snapshot"]),
            ("2016-01-03 07:02:03", "", ["hourly snapshot"]),
            ("2016-01-01 07:08:03", "", ["hourly snapshot"]),
            ("2016-01-01 01:03:03", "", ["hourly snapshot"]),
            ("2015-11-22 10:20:30", "", ["hourly snapshot"]),
            ("2015-11-21 10:20:30", "", ["hourly snapshot"]),
            ("2015-11-20 10:20:30", "", ["hourly snapshot"]),
            ("2015-11-18 10:20:30", "", ["hourly snapshot"]),
            ("2015-11-15 10:20:30", "", ["hourly snapshot"]),
            ("2015-11-13 10:20:30.1", "", ["hourly snapshot"]),
        ],
    ),
    6: (
        {"keep_daily": 3},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot"]),
        ],
    ),
    7: (
        {"keep_daily": 10},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot"]),
            ("2016-01-08 20:02:03", "", ["daily snapshot"]),
            ("2016-01-07 10:02:03", "", ["daily snapshot"]),
            ("2016-01-06 08:02:03", "", ["daily snapshot"]),
            ("2016-01-05 09:02:03", "", ["daily snapshot"]),
            ("2016-01-04 16:23:03", "", ["daily snapshot"]),
            ("2016-01-03 07:02:03", "", ["daily snapshot"]),
            ("2016-01-01 07:08:03", "", ["daily snapshot"]),
        ],
    ),
    9: (
        {"keep_last": 5, "keep_daily": 5},
        [
            ("2016-01-18 12:02:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-12 21:08:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-12 21:02:03", "", ["last snapshot"]),
            ("2016-01-09 21:02:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-08 20:02:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-07 10:02:03", "", ["daily snapshot"]),
        ],
    ),
    10: (
        {"keep_last": 2, "keep_daily": 10},
        [
            ("2016-01-18 12:02:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-12 21:08:03", "", ["last snapshot", "daily snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot"]),
            ("2016-01-08 20:02:03", "", ["daily snapshot"]),
            ("2016-01-07 10:02:03", "", ["daily snapshot"]),
            ("2016-01-06 08:02:03", "", ["daily snapshot"]),
            ("2016-01-05 09:02:03", "", ["daily snapshot"]),
            ("2016-01-04 16:23:03", "", ["daily snapshot"]),
            ("2016-01-03 07:02:03", "", ["daily snapshot"]),
            ("2016-01-01 07:08:03", "", ["daily snapshot"]),
        ],
    ),
    11: (
        {"keep_weekly": 2},
        [
            ("2016-01-18 12:02:03", "", ["weekly snapshot"]),
            ("2016-01-12 21:08:03", "", ["weekly snapshot"]),
        ],
    ),
    12: (
        {"keep_weekly": 4},
        [
            ("2016-01-18 12:02:03", "", ["weekly snapshot"]),
            ("2016-01-12 21:08:03", "", ["weekly snapshot"]),
            ("2016-01-09 21:02:03", "", ["weekly snapshot"]),
            ("2016-01-03 07:02:03", "", ["weekly snapshot"]),
        ],
    ),
    13: (
        {"keep_daily": 3, "keep_weekly": 4},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2016-01-03 07:02:03", "", ["weekly snapshot"]),
        ],
    ),
    14: (
        {"keep_monthly": 6},
        [
            ("2016-01-18 12:02:03", "", ["monthly snapshot"]),
            ("2015-11-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-10-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-09-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-08-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-11-22 10:20:30", "", ["monthly snapshot"]),
        ],
    ),
    15: (
        {"keep_daily": 2, "keep_weekly": 2, "keep_monthly": 6},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot", "weekly snapshot", "monthly snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2015-11-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-10-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-09-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-08-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-11-22 10:20:30", "", ["monthly snapshot"]),
        ],
    ),
    16: (
        {"keep_yearly": 10},
        [
            ("2016-01-18 12:02:03", "", ["yearly snapshot"]),
            ("2015-11-22 10:20:30", "", ["yearly snapshot"]),
            ("2014-11-22 10:20:30", "", ["yearly snapshot"]),
            ("2014-08-08 10:20:30", "", ["oldest yearly snapshot"]),
        ],
    ),
    17: (
        {"keep_daily": 7, "keep_weekly": 2, "keep_monthly": 3, "keep_yearly": 10},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot"]),
            ("2016-01-08 20:02:03", "", ["daily snapshot"]),
            ("2016-01-07 10:02:03", "", ["daily snapshot"]),
            ("2016-01-06 08:02:03", "", ["daily snapshot"]),
            ("2016-01-05 09:02:03", "", ["daily snapshot"]),
            ("2015-11-22 10:20:30", "", ["monthly snapshot", "yearly snapshot"]),
            ("2015-10-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-11-22 10:20:30", "", ["yearly snapshot"]),
            ("2014-08-08 10:20:30", "", ["oldest yearly snapshot"]),
        ],
    ),
    18: (
        {"keep_labels": ["foo"]},
        [
            ("2015-10-22 10:20:30", "foo bar", ["has label foo"]),
            ("2015-10-22 10:20:30", "foo bar", ["has label foo"]),
            ("2015-10-22 10:20:30", "foo bar", ["has label foo"]),
            ("2014-11-15 10:20:30", "foo bar", ["has label foo"]),
            ("2014-11-13 10:20:30", "foo", ["has label foo"]),
            ("2014-11-12 10:20:30", "foo", ["has label foo"]),
            ("2014-11-10 10:20:30", "foo", ["has label foo"]),
            ("2014-11-08 10:20:30", "foo", ["has label foo"]),
            ("2014-10-22 10:20:30", "foo", ["has label foo"]),
            ("2014-10-20 10:20:30", "foo", ["has label foo"]),
            ("2014-10-11 10:20:30", "foo", ["has label foo"]),
            ("2014-10-10 10:20:30", "foo", ["has label foo"]),
            ("2014-10-09 10:20:30", "foo", ["has label foo"]),
            ("2014-10-08 10:20:30", "foo", ["has label foo"]),
            ("2014-10-06 10:20:30", "foo", ["has label foo"]),
            ("2014-10-05 10:20:30", "foo", ["has label foo"]),
            ("2014-10-02 10:20:30", "foo", ["has label foo"]),
            ("2014-10-01 10:20:30", "foo", ["has label foo"]),
        ],
    ),
    20: (
        {"keep_labels": ["foo", "bar"]},
        [
            ("2015-10-22 10:20:30", "foo bar", ["has label foo", "has label bar"]),
            ("2015-10-22 10:20:30", "foo bar", ["has label foo", "has label bar"]),
            ("2015-10-22 10:20:30", "foo bar", ["has label foo", "has label bar"]),
            ("2014-11-15 10:20:30", "foo bar", ["has label foo", "has label bar"]),
            ("2014-11-13 10:20:30.1", "bar", ["has label bar"]),
            ("2014-11-13 10:20:30", "foo", ["has label foo"]),
            ("2014-11-12 10:20:30", "foo", ["has label foo"]),
            ("2014-11-10 10:20:30", "foo", ["has label foo"]),
            ("2014-11-08 10:20:30", "foo", ["has label foo"]),
            ("2014-10-22 10:20:30", "foo", ["has label foo"]),
            ("2014-10-20 10:20:30", "foo", ["has label foo"]),
            ("2014-10-11 10:20:30", "foo", ["has label foo"]),
            ("2014-10-10 10:20:30", "foo", ["has label foo"]),
            ("2014-10-09 10:20:30", "foo", ["has label foo"]),
            ("2014-10-08 10:20:30", "foo", ["has label foo"]),
            ("2014-10-06 10:20:30", "foo", ["has label foo"]),
            ("2014-10-05 10:20:30", "foo", ["has label foo"]),
            ("2014-10-02 10:20:30", "foo", ["has label foo"]),
            ("2014-10-01 10:20:30", "foo", ["has label foo"]),
        ],
    ),
    21: (
        {"keep_within": "1d"},
        [
            ("2016-01-18 12:02:03", "", ["within 1d"]),
        ],
    ),
    22: (
        {"keep_within": "2d"},
        [
            ("2016-01-18 12:02:03", "", ["within 2d"]),
        ],
    ),
    23: (
        {"keep_within": "7d"},
        [
            ("2016-01-18 12:02:03", "", ["within 7d"]),
            ("2016-01-12 21:08:03", "", ["within 7d"]),
            ("2016-01-12 21:02:03", "", ["within 7d"]),
        ],
    ),
    24: (
        {"keep_within": "1m"},
        [
            ("2016-01-18 12:02:03", "", ["within 1m"]),
            ("2016-01-12 21:08:03", "", ["within 1m"]),
            ("2016-01-12 21:02:03", "", ["within 1m"]),
            ("2016-01-09 21:02:03", "", ["within 1m"]),
            ("2016-01-08 20:02:03", "", ["within 1m"]),
            ("2016-01-07 10:02:03", "", ["within 1m"]),
            ("2016-01-06 08:02:03", "", ["within 1m"]),
            ("2016-01-05 09:02:03", "", ["within 1m"]),
            ("2016-01-04 16:23:03", "", ["within 1m"]),
            ("2016-01-04 12:30:03", "", ["within 1m"]),
            ("2016-01-04 12:28:03", "", ["within 1m"]),
            ("2016-01-04 12:24:03", "", ["within 1m"]),
            ("2016-01-04 12:23:03", "", ["within 1m"]),
            ("2016-01-04 11:23:03", "", ["within 1m"]),
            ("2016-01-04 10:23:03", "", ["within 1m"]),
            ("2016-01-03 07:02:03", "", ["within 1m"]),
            ("2016-01-01 07:08:03", "", ["within 1m"]),
            ("2016-01-01 01:03:03", "", ["within 1m"]),
            ("2016-01-01 01:02:03", "", ["within 1m"]),
        ],
    ),
    27: (
        {"keep_within": "13d23h"},
        [
            ("2016-01-18 12:02:03", "", ["within 13d23h"]),
            ("2016-01-12 21:08:03", "", ["within 13d23h"]),
            ("2016-01-12 21:02:03", "", ["within 13d23h"]),
            ("2016-01-09 21:02:03", "", ["within 13d23h"]),
            ("2016-01-08 20:02:03", "", ["within 13d23h"]),
            ("2016-01-07 10:02:03", "", ["within 13d23h"]),
            ("2016-01-06 08:02:03", "", ["within 13d23h"]),
            ("2016-01-05 09:02:03", "", ["within 13d23h"]),
            ("2016-01-04 16:23:03", "", ["within 13d23h"]),
        ],
    ),
    28: (
        {"keep_within": "2m2h"},
        [
            ("2016-01-18 12:02:03", "", ["within 2m2h"]),
            ("2016-01-12 21:08:03", "", ["within 2m2h"]),
            ("2016-01-12 21:02:03", "", ["within 2m2h"]),
            ("2016-01-09 21:02:03", "", ["within 2m2h"]),
            ("2016-01-08 20:02:03", "", ["within 2m2h"]),
            ("2016-01-07 10:02:03", "", ["within 2m2h"]),
            ("2016-01-06 08:02:03", "", ["within 2m2h"]),
            ("2016-01-05 09:02:03", "", ["within 2m2h"]),
            ("2016-01-04 16:23:03", "", ["within 2m2h"]),
            ("2016-01-04 12:30:03", "", ["within 2m2h"]),
            ("2016-01-04 12:28:03", "", ["within 2m2h"]),
            ("2016-01-04 12:24:03", "", ["within 2m2h"]),
            ("2016-01-04 12:23:03", "", ["within 2m2h"]),
            ("2016-01-04 11:23:03", "", ["within 2m2h"]),
            ("2016-01-04 10:23:03", "", ["within 2m2h"]),
            ("2016-01-03 07:02:03", "", ["within 2m2h"]),
            ("2016-01-01 07:08:03", "", ["within 2m2h"]),
            ("2016-01-01 01:03:03", "", ["within 2m2h"]),
            ("2016-01-01 01:02:03", "", ["within 2m2h"]),
            ("2015-11-22 10:20:30", "", ["within 2m2h"]),
            ("2015-11-21 10:20:30", "", ["within 2m2h"]),
            ("2015-11-20 10:20:30", "", ["within 2m2h"]),
            ("2015-11-18 10:20:30", "", ["within 2m2h"]),
        ],
    ),
    39: (
        {"keep_daily": 3, "keep_weekly": 2, "keep_monthly": -1, "keep_yearly": -1},
        [
            ("2016-01-18 12:02:03", "", ["daily snapshot", "weekly snapshot", "monthly snapshot", "yearly snapshot"]),
            ("2016-01-12 21:08:03", "", ["daily snapshot", "weekly snapshot"]),
            ("2016-01-09 21:02:03", "", ["daily snapshot"]),
            ("2015-11-22 10:20:30", "", ["monthly snapshot", "yearly snapshot"]),
            ("2015-10-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-09-22 10:20:30", "", ["monthly snapshot"]),
            ("2015-08-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-11-22 10:20:30", "", ["monthly snapshot", "yearly snapshot"]),
            ("2014-10-22 10:20:30", "foo", ["monthly snapshot"]),
            ("2014-09-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-08-22 10:20:30", "", ["monthly snapshot"]),
            ("2014-08-08 10:20:30", "", ["oldest monthly snapshot", "oldest yearly snapshot"]),
        ],
    ),
}


def _utc(time: str) -> datetime:
    return datetime.fromisoformat(time).replace(tzinfo=UTC)


def _restic_snapshots() -> list[Candidate]:
    # The ids descend with the list position: ties of time then keep restic's input order (sort.Stable).
    return [
        Candidate(
            snapshot_id=f"restic-{len(RESTIC_SNAPSHOTS) - position:03d}",
            created_at=_utc(time),
            labels=dict.fromkeys(tags.split(), "yes"),
        )
        for position, (time, tags) in enumerate(RESTIC_SNAPSHOTS)
    ]


@pytest.mark.parametrize("number", sorted(RESTIC_CASES), ids=lambda number: f"policy_keep_snapshots_{number}")
def test_restic_golden_file(number: int) -> None:
    policy_data, expected = RESTIC_CASES[number]
    snapshots = _restic_snapshots()
    by_id = {snapshot.snapshot_id: snapshot for snapshot in snapshots}

    result = plan(snapshots, structure(policy_data, RetentionPolicy), now=datetime(2026, 1, 1, tzinfo=UTC))

    kept = [
        (by_id[entry.snapshot_id].created_at, " ".join(by_id[entry.snapshot_id].labels), list(entry.reasons))
        for entry in result.keep
    ]
    assert kept == [(_utc(time), tags, reasons) for time, tags, reasons in expected]
    assert len(result.keep) + len(result.drop) == len(RESTIC_SNAPSHOTS)
