"""Input a client controls: the one JSON parser and the one string rule every request goes through.

The API reads request bodies and cursors with ``parse_json`` and checks the path and every query parameter
with ``text_problem``, so nothing that reaches the database, the request hash or the error envelope can make
them fail (SPEC §2: "… never 500"). The limits:

- nesting of arrays and objects at most ``MAX_DEPTH`` deep (measured before parsing: the parser never
  recurses further);
- integers within a signed 64-bit ``bigint``, floats finite; ``NaN`` and ``Infinity`` are not JSON;
- no object with the same key twice (which one would count is a guess between parsers);
- in every string, key or value: no NUL (``\\u0000``, which PostgreSQL cannot store in text or jsonb) and no
  lone surrogate (``\\ud800``, not a character: it cannot be encoded in UTF-8). Other code points —
  controls, non-characters — are accepted: they encode and PostgreSQL stores them.

Why not a faster parser from PyPI: orjson and msgspec have a fixed depth limit of their own and keep the last of
duplicate keys silently; the standard library's ``json`` has a hook for each rule but depth, which a scan of
the brackets (outside strings) decides before parsing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_MAX_INT_DIGITS = len(str(INT_MAX))

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
_STRING_LITERAL = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SQUARE = str.maketrans("{}", "[]")
# Valid UTF-8 JSON can hold a NUL or a surrogate only as an escape: without one, no string needs a look.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


class UntrustedInputError(ValueError):
    """Input refused by a rule of this module; the message names the rule and where it was broken."""


def text_problem(value: str) -> str | None:
    """What makes ``value`` unfit to store or encode (a NUL or a lone surrogate), or None when it is fine."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return f"contains NUL (\\u0000) at offset {found.start()}"
    return f"contains a lone surrogate (\\u{ord(char):04x}) at offset {found.start()}, which is not a character"


def check_text(value: str, what: str) -> str:
    """``value`` when it passes the string rule; else UntrustedInputError naming ``what``."""
    problem = text_problem(value)
    if problem is not None:
        raise UntrustedInputError(f"{what} {problem}")
    return value


def ascii_int(value: str, low: int, high: int) -> int | None:
    """``value`` as an int when it is 1 to 18 ASCII digits within ``low``..``high``; else None (no
    ``"١٢"``, ``"²"``, signs, blanks or underscores, which ``int()`` would take or choke on)."""
    if not (0 < len(value) <= 18 and value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if low <= number <= high else None


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (strings skipped), counting no further than
    ``limit + 1``. Each round removes every innermost pair of brackets at C speed. Brackets left open (text
    that is not JSON, but the parser would descend into them before saying so) count as nesting too."""
    structure = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text)).translate(_SQUARE)
    depth = 0
    while "[]" in structure and depth <= limit:
        depth += 1
        structure = structure.replace("[]", "")
    return min(depth + structure.count("["), limit + 1)


def _parse_int(literal: str) -> int:
    digits = literal.lstrip("-")
    if len(digits) <= _MAX_INT_DIGITS:
        number = int(literal)
        if INT_MIN <= number <= INT_MAX:
            return number
    shown = literal if len(literal) <= 24 else literal[:20] + "…"
    raise UntrustedInputError(f"integer {shown} is out of range (a signed 64-bit integer at most)")


def _parse_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        shown = literal if len(literal) <= 24 else literal[:20] + "…"
        raise UntrustedInputError(f"number {shown} is out of range (a finite 64-bit float at most)")
    return number


def _parse_constant(name: str) -> Any:
    raise UntrustedInputError(f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise UntrustedInputError(f"duplicate key {name[:64]!r} in an object")
            seen.add(name)
    return result


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)


_Where = tuple[Any, str | int] | None  # (parent, step): the path to a value, built only to report it


def _describe(where: _Where) -> str:
    steps: list[str | int] = []
    while where is not None:
        where, step = where
        steps.append(step)
    shown = "$"
    for step in reversed(steps):
        if isinstance(step, int):
            shown += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", step):
            shown += f".{step}"
        else:
            shown += f"[{json.dumps(step)}]"
    return shown.removeprefix("$.") if shown != "$" else shown


def check_strings(value: Any) -> None:
    """Apply the string rule to every key and string in the JSON ``value`` (iteratively: no recursion);
    the error names the offending place, e.g. ``labels["k"]`` or ``$`` for the document itself."""
    pending: list[tuple[Any, _Where]] = [(value, None)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if _FORBIDDEN.search(item):
                check_text(item, f"the string at {_describe(where)}")
        elif isinstance(item, dict):
            for name, child in item.items():
                if _FORBIDDEN.search(name):
                    check_text(name, f"a key of the object at {_describe(where)}")
                if isinstance(child, dict | list | str):
                    pending.append((child, (where, name)))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, dict | list | str):
                    pending.append((child, (where, index)))


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse the UTF-8 JSON document ``raw`` under every rule of this module; UntrustedInputError (a
    ValueError) says what is wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UntrustedInputError(f"not valid JSON: not UTF-8 (byte {error.start})") from None
    if nesting_depth(text, max_depth) > max_depth:
        raise UntrustedInputError(f"arrays and objects nest deeper than {max_depth} levels")
    try:
        value = _DECODER.decode(text)
    except UntrustedInputError:
        raise
    except (ValueError, RecursionError) as error:  # RecursionError: not with the depth checked, but never a 500
        raise UntrustedInputError(f"not valid JSON: {error}") from None
    if _SUSPECT_ESCAPE.search(text):
        check_strings(value)
    return value
