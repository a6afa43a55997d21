"""Hypothesis strategies for input a client controls and a schema-driven generator never makes: JSON as raw
bytes (nesting of any depth, numbers of any size, NaN, duplicate keys, NUL, lone surrogates, control and
non-character code points in every key and string, invalid UTF-8, truncation), query strings (non-ASCII
digits, forged cursors holding extreme values, percent-encoded junk), and header values."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_from_bytes

from hypothesis import strategies as st

# Characters that have broken parsers, databases and encoders: NUL and other C0/C1 controls, DEL, lone
# surrogates of either half, non-characters, line and paragraph separators, bidi overrides, the BOM, the
# replacement character, non-ASCII digits (Arabic-Indic, superscript, fullwidth, mathematical), and the
# highest code point.
SPECIAL_CHARS = [
    *"\x00\x01\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x80\x85\x9f\xa0\xad",
    *"\ud800\udbff\udc00\udfff",
    *"\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010fffe\U0010ffff",
    *"\u2028\u2029\u202e\u2066\u200b\ufeff\ufffd",
    *"\u0661\u0662\u00b2\u00b9\uff11\U0001d7d7\u0f29\u2155",
    *"\"\\/'%&=?#;<>{}[]",
]
SPECIAL_STRINGS = [  # first the worst: hypothesis tries early elements of a list first
    "a\x00b",
    "a\ud800b",
    "",
    " ",
    "\udc00\ud800",  # a pair in the wrong order: two lone surrogates
    "\ud83d\ude00",  # a correct pair: one character
    "\\u0000",
    "%00",
    "null",
    "../../etc/passwd",
    "'; DROP TABLE wvs.tasks; --",
    "\u0661\u0662",
    "x" * 5000,
    "\x00" * 300,
]


def hostile_text(max_size: int = 16) -> st.SearchStrategy[str]:
    """Any text, weighted towards the characters and strings above; surrogates and NUL included."""
    piece = st.one_of(
        st.sampled_from(SPECIAL_CHARS),
        st.sampled_from(SPECIAL_STRINGS),
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    )
    return st.lists(piece, max_size=max_size).map("".join)


# --- JSON as raw text ------------------------------------------------------------------------------

NUMBER_LITERALS = [
    "0",
    "-0",
    "1",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1" * 400,
    "9" * 5000,  # past int()'s 4300-digit limit
    "1e308",
    "1e309",
    "-1e999",
    "1e-999",
    "2.2250738585072014e-308",
    "4.9e-324",
    "0." + "0" * 3000 + "1",
    "1" * 500 + ".5",
    "NaN",
    "Infinity",
    "-Infinity",
    "1E400",
    "01",
    "+1",
    ".5",
    "0x10",
]


class Raw(str):
    """JSON text to be emitted as it is (a number literal, or a nesting made by ``deep``)."""


Pairs = list[tuple[str, Any]]  # a JSON object as written: keys may repeat


def render(node: Any, ensure_ascii: bool) -> str:
    """``node`` as JSON text; objects are ``Pairs``, so duplicate keys survive. Lone surrogates become
    ``\\udXXX`` escapes with ``ensure_ascii``, else stay raw (and make the bytes invalid UTF-8)."""
    if isinstance(node, Raw):
        return str(node)
    if isinstance(node, str | bool) or node is None:
        return json.dumps(node, ensure_ascii=ensure_ascii)
    if isinstance(node, list) and node and isinstance(node[0], tuple):
        inner = ",".join(f"{render(key, ensure_ascii)}:{render(value, ensure_ascii)}" for key, value in node)
        return "{" + inner + "}"
    if isinstance(node, list):
        return "[" + ",".join(render(item, ensure_ascii) for item in node) + "]"
    if isinstance(node, dict):
        return render(list(node.items()) or Raw("{}"), ensure_ascii)
    return json.dumps(node)


@st.composite
def objects(draw: st.DrawFn, values: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> Any:
    """An object, maybe with a key repeated (the second value differing or not)."""
    pairs: Pairs = draw(st.lists(st.tuples(keys, values), max_size=4))
    if pairs and draw(st.booleans()):
        key, _ = draw(st.sampled_from(pairs))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(values)))
    return pairs or Raw("{}")


@st.composite
def deep(draw: st.DrawFn) -> Raw:
    """Arrays or objects nested to any depth (up to past the body limit), closed or left open."""
    depth = draw(st.one_of(st.integers(30, 40), st.integers(1, 2000), st.sampled_from([20_000, 40_000])))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"message":', "}]")]))
    middle = draw(st.sampled_from(["", "1", '"x"', "null"] if opener == "[" else ["1", '"x"', "null"]))
    closed = draw(st.booleans()) or draw(st.booleans())
    return Raw(opener * depth + middle + (closer * depth if closed else ""))


def json_values(field_names: list[str]) -> st.SearchStrategy[Any]:
    """JSON documents (as nodes for ``render``): mostly objects of the route's own fields or keyed by them."""
    keys = st.one_of(st.sampled_from(field_names or ["message"]), hostile_text(8))
    scalars = st.one_of(
        hostile_text(),
        st.sampled_from(NUMBER_LITERALS).map(Raw),
        st.integers().map(lambda number: Raw(str(number))),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda number: Raw(repr(number))),
        st.sampled_from([True, False, None]),
    )
    nested = st.recursive(
        scalars, lambda children: st.lists(children, max_size=4) | objects(children, keys), max_leaves=8
    )
    return st.one_of(shaped(field_names, nested), shaped(field_names, nested), objects(nested, keys), nested, deep())


@st.composite
def shaped(draw: st.DrawFn, field_names: list[str], nested: st.SearchStrategy[Any]) -> Any:
    """An object of the route's own fields (some of them), each holding hostile text most of the time: what
    gets past the schema and on to the hash, the database and the error messages."""
    if not field_names:
        return Raw("{}")
    names = draw(st.lists(st.sampled_from(field_names), min_size=1, max_size=len(field_names), unique=True))
    value = st.one_of(st.sampled_from(SPECIAL_STRINGS), hostile_text(), hostile_text(), nested)
    return [(name, draw(value)) for name in names]


@st.composite
def json_bodies(draw: st.DrawFn, field_names: list[str]) -> bytes:
    """A request body: hostile JSON as bytes (escaped or raw UTF-8, or CESU-like invalid UTF-8 where a
    surrogate is raw), sometimes truncated, with a BOM or a stray byte, or nothing at all."""
    text = render(draw(json_values(field_names)), ensure_ascii=draw(st.booleans()))
    data = text.encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none"] * 10 + ["truncate", "bom", "latin1", "blank", "empty", "utf16"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "latin1":
        data = data + b"\xff"
    elif damage == "blank":
        data = b" \r\n\t "
    elif damage == "empty":
        data = b""
    elif damage == "utf16":
        data = text.encode("utf-16", "surrogatepass")
    return data


# --- query strings ---------------------------------------------------------------------------------

TIMES = [
    "2026-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "9999-12-31T23:59:59+14:00",
    "2026-01-01T00:00:00",
    "2026-01-01",
    "2026-W01",
    "infinity",
    "-infinity",
    "2026-01-01T00:00:00+23:59:59.999999",
    "",
]
IDS: list[Any] = [
    "01a21e96-ed6a-7531-a909-a04f53b8d655",
    "fuzz-ws",
    "zzzz",
    "",
    0,
    -1,
    1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    True,
    None,
    [],
    {},
]


AWARE_TIMES = [time for time in TIMES if len(time) > 19 and time[19] in "+-."]


@st.composite
def cursors(draw: st.DrawFn) -> str:
    """Cursors: the API's own encoding (URL-safe base64 of JSON, unpadded) holding extreme or wrong values —
    mostly a well-formed time, so the id gets looked at —, random bytes so encoded, truncated ones, and
    strings that are no base64 at all."""
    kind = draw(st.sampled_from(["forged"] * 6 + ["bytes", "truncated", "text", "padded"]))
    if kind == "text":
        return draw(hostile_text(30))
    if kind == "bytes":
        raw = draw(st.binary(max_size=200))
    else:
        time = st.one_of(st.sampled_from(AWARE_TIMES), st.sampled_from(TIMES), hostile_text(10), st.sampled_from(IDS))
        row_id = st.one_of(st.sampled_from(IDS), hostile_text(10), st.sampled_from(NUMBER_LITERALS).map(Raw))
        fields = [draw(st.sampled_from(AWARE_TIMES)) if draw(st.booleans()) else draw(time), draw(row_id)]
        if draw(st.integers(0, 5)) == 0:
            fields = fields[: draw(st.integers(0, 1))] + ([fields[1]] if draw(st.booleans()) else [])
        raw = render(fields, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    encoded = base64.urlsafe_b64encode(raw).decode()
    if kind == "truncated" and encoded:
        return encoded[: draw(st.integers(0, len(encoded) - 1))]
    return encoded if kind == "padded" else encoded.rstrip("=")


# Number-ish text: non-ASCII decimal digits (which int() takes), digits that are not decimal (superscripts,
# circled: isdigit() says yes, int() says no), fractions, signs, blanks, exponents, too many digits.
LIMITS = [
    *("\u00b2", "\u0661\u0662", "\u00b9", "\u2460", "\uff11\uff10", "\U0001d7d7", "\u0f29", "\u2155", "\u00bd"),
    *("1e2", "-1", "+1", " 1", "1 ", "0x10", "9" * 5000, "100", "101", "0", "", "1.0", "20", "1_0", "0020"),
]
QUERY_VALUES = [*LIMITS, "ACTIVE", "PENDING", "snapshot_create", "fuzz-ws", "key=value", "a=b=c"]


def query_value(name: str) -> st.SearchStrategy[str]:
    """A value for the parameter ``name``: cursors for ``cursor``, number-ish text for ``limit``, anything."""
    anything = st.one_of(st.sampled_from(QUERY_VALUES), cursors(), hostile_text(20))
    if name == "cursor":
        return st.one_of(cursors(), anything)
    if name == "limit":
        return st.one_of(st.sampled_from(LIMITS), anything)
    return anything


def _encode(text: str) -> str:
    # Every byte percent-encoded; a lone surrogate becomes the (invalid UTF-8) bytes of its code point.
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def query_strings(draw: st.DrawFn, names: list[str]) -> bytes:
    """A raw query string. Half the time one of the route's own parameters (or cursor, limit) alone, so its
    value is what gets judged; else several, known or not, repeated or not, and now and then undecodable
    percent-escapes and stray separators."""
    known = st.sampled_from([*names, "cursor", "limit"])
    if draw(st.booleans()):  # cursor and limit, which every list takes, most often
        name = draw(st.sampled_from(["cursor"] * 4 + ["limit"] * 2 + names) if names else known)
        return f"{name}={_encode(draw(query_value(name)))}".encode("ascii")
    pairs = [
        f"{_encode(name)}={_encode(draw(query_value(name)))}"
        for name in draw(st.lists(st.one_of(known, hostile_text(8)), max_size=4))
    ]
    junk = st.sampled_from(["", "&", "&&", "=", "%", "%zz", "%ff%fe", "%ED%A0%80", "%C0%80", "a=%00", "limit"])
    pairs.append(draw(junk))
    return "&".join(part for part in pairs if part).encode("ascii")


# --- headers ---------------------------------------------------------------------------------------


def header_values() -> st.SearchStrategy[bytes]:
    """Header values an HTTP client can still send: visible ASCII and Latin-1 bytes with inner blanks."""
    visible = st.sampled_from([bytes([byte]) for byte in (*range(0x21, 0x7F), *range(0x80, 0x100))])
    inner = st.one_of(visible, st.sampled_from([b" ", b"\t"]))
    return st.one_of(
        st.sampled_from([b"", b"k", b"x" * 256, b"x" * 5000, b"\xff\xfe", b"\x85", b"caf\xe9"]),
        st.tuples(visible, st.lists(inner, max_size=40), visible).map(lambda t: t[0] + b"".join(t[1]) + t[2]),
    )
