"""A diff's changes counted, rendered like ``git diff --stat`` and round-tripped through JSON
(``wvs_diff.render``), names of any bytes included."""

from __future__ import annotations

import json
import os

import pytest

from wvs_diff.compare import Change, ChangeKind
from wvs_diff.render import DiffSummary, change_from_json, change_to_json, display_path, render_stat, summarize

INVALID = os.fsdecode(b"38/bad-\xff\xfe")
CHANGES = [
    Change("02/new.txt", ChangeKind.ADDED, None, "file", None, 4),
    Change("04/added", ChangeKind.ADDED, None, "directory", None, None),
    Change("08/dir", ChangeKind.TYPE_CHANGED, "directory", "file", None, 11),
    Change("08/dir/inside", ChangeKind.REMOVED, "file", None, 7, None),
    Change("02/text.txt", ChangeKind.MODIFIED, "file", "file", 6, 16, ("mtime",)),
    Change("26/file", ChangeKind.META_CHANGED, "file", "file", 16, 16, ("xattrs",)),
    Change(INVALID, ChangeKind.REMOVED, "file", None, 15, None),
    Change("39/new\nline", ChangeKind.ADDED, None, "file", None, 3),
    Change("42/\u202e-rtl", ChangeKind.META_CHANGED, "symlink", "symlink", 1, 1, ("uid", "gid")),
    Change("36/node", ChangeKind.MODIFIED, "char_device", "char_device", None, None),
    Change("a/" + "x" * 70, ChangeKind.ADDED, None, "symlink", None, 4),
]


def test_render_stat_lists_every_change_and_sums_them_up() -> None:
    width = 60
    expected = [
        ("02/new.txt", "added file +4"),
        ("04/added/", "added directory"),
        ("08/dir", "type_changed directory -> file"),
        ("08/dir/inside", "removed file -7"),
        ("02/text.txt", "modified file 6 -> 16 (mtime)"),
        ("26/file", "meta_changed xattrs"),
        ('"38/bad-\\377\\376"', "removed file -15"),
        ('"39/new\\nline"', "added file +3"),
        ('"42/\\342\\200\\256-rtl"', "meta_changed uid, gid"),
        ("36/node", "modified char_device"),
        ("..." + "x" * 57, "added symlink +4"),
    ]
    summary = (
        " 11 entries changed (4 added, 2 removed, 2 modified, 1 type changed, 2 meta changed),"
        " 32 bytes added(+), 22 bytes removed(-)"
    )
    assert render_stat(CHANGES) == "".join(f" {path:<{width}} | {what}\n" for path, what in expected) + summary + "\n"
    assert render_stat([]) == " 0 entries changed, 0 bytes added(+), 0 bytes removed(-)\n"


def test_summary_counts_kinds_and_size_growth() -> None:
    summary = summarize(iter(CHANGES))
    grown, shrunk = 4 + 11 + 10 + 3 + 4, 7 + 15  # a same-size change adds and removes nothing
    assert summary == DiffSummary(
        added=4, removed=2, modified=2, type_changed=1, meta_changed=2, bytes_added=grown, bytes_removed=shrunk
    )
    assert summary.changes == len(CHANGES)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("plain/ünïcödé-名前.md", "plain/ünïcödé-名前.md"),
        (" leading and trailing ", " leading and trailing "),
        ('with "quotes"', '"with \\"quotes\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\\there"'),
        ("\x1b[31mred", '"\\033[31mred"'),
        (os.fsdecode(b"caf\xc3\xa9-\xff"), '"caf\\303\\251-\\377"'),
    ],
)
def test_display_path_quotes_what_a_terminal_would_misshow(path: str, shown: str) -> None:
    assert display_path(path) == shown


def test_json_round_trips_any_bytes_and_is_valid_utf8_json() -> None:
    for change in CHANGES:
        data = change_to_json(change)
        text = json.dumps(data, ensure_ascii=False).encode("utf-8").decode("utf-8")  # no lone surrogate
        assert change_from_json(json.loads(text)) == change
        assert ("path_b64" in data) == (change.path == INVALID)
    assert change_to_json(CHANGES[6])["path"] == "38/bad-\ufffd\ufffd"
    assert change_to_json(CHANGES[0]) == {
        "path": "02/new.txt",
        "change": "added",
        "type_before": None,
        "type_after": "file",
        "size_before": None,
        "size_after": 4,
        "meta": [],
    }
    with pytest.raises(ValueError, match="base64"):
        change_from_json({**change_to_json(CHANGES[6]), "path_b64": "not base64!"})
