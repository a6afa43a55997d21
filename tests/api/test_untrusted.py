"""The rules of wvs_core.untrusted, on their own: the parser every body and cursor goes through."""

from __future__ import annotations

import json

import pytest

from wvs_core.untrusted import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    UntrustedInputError,
    ascii_int,
    check_strings,
    nesting_depth,
    parse_json,
)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 20_000 + b"]" * 20_000, "nest deeper than 32"),
        (b"[" * 60_000, "nest deeper than 32"),  # never closed: the parser would still descend
        (b'{"a":' * 33 + b"1" + b"}" * 33, "nest deeper than 32"),
        (b'{"message": "a\\u0000b"}', "message contains NUL"),
        (b'{"message": "a\\ud800b"}', "message contains a lone surrogate (\\ud800)"),
        (b'{"message": "\\uDC00"}', "lone surrogate (\\udc00)"),
        (b'{"m\\ud800": 1}', "a key of the object at $"),
        (b'{"labels": {"k": ["x", "\\u0000"]}}', "labels.k[1] contains NUL"),
        (b'{"a b": {"\\u0000": 1}}', 'a key of the object at $["a b"]'),
        (b'"\\u0000"', "the string at $"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'[{"x": {"y": 1, "y": 1}}]', "duplicate key 'y'"),
        (b"1" * 5000, "out of range"),  # past int()'s digit limit: a ValueError, not a 500
        (b"9223372036854775808", "out of range"),
        (b"-9223372036854775809", "out of range"),
        (b"1e999", "out of range"),
        (b"-1e400", "out of range"),
        (b"NaN", "NaN is not a JSON number"),
        (b"[Infinity]", "Infinity is not a JSON number"),
        (b"-Infinity", "-Infinity is not a JSON number"),
        (b"\xff\xfe", "not UTF-8"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"{} x", "not valid JSON"),
        (b'"\x00"', "not valid JSON"),  # a raw control character in a string
        (b"{not json", "not valid JSON"),
    ],
)
def test_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(UntrustedInputError) as refused:
        parse_json(raw)
    assert fragment in str(refused.value)
    str(refused.value).encode()  # the message itself is always sendable


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
        (b'["\\ud83d\\ude00", "\\ufffe", "\\uffff", "\\u0001\\u007f\\u0085", "\\\\u0000"]', None),
        (b'{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', None),
        (str(INT_MAX).encode(), INT_MAX),
        (str(INT_MIN).encode(), INT_MIN),
        (b"1.7976931348623157e308", 1.7976931348623157e308),
        (b"1e-400", 0.0),
        (b" \n{}\t", {}),
    ],
)
def test_accepted(raw: bytes, value: object) -> None:
    assert parse_json(raw) == (json.loads(raw) if value is None else value)


def test_surrogate_pairs_and_non_characters_are_characters() -> None:
    raw = '["\\ud83d\\ude00", "\ufdd0\U0010ffff"]'.encode()  # an escaped pair; non-characters as UTF-8
    assert parse_json(raw) == ["\U0001f600", "\ufdd0\U0010ffff"]


def test_depth_counts_structure_not_strings() -> None:
    assert nesting_depth('{"a": "[[[[{{{{", "b": [{}]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    assert nesting_depth("[" * 1000) == MAX_DEPTH + 1


def test_check_strings_walks_without_recursion() -> None:
    deep: list[object] = ["\x00"]
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(UntrustedInputError, match="contains NUL"):
        check_strings(deep)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *(("12", 12), ("0012", 12), ("100", 100), ("101", None), ("0", None), ("", None), ("١٢", None)),
        *(("²", None), (" 1", None), ("+1", None), ("1_0", None), ("-1", None), ("9" * 5000, None), ("1e2", None)),
    ],
)
def test_ascii_int(value: str, expected: int | None) -> None:
    assert ascii_int(value, 1, 100) == expected
