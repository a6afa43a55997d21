"""The one cattrs converter: config, API bodies, op params and responses go through it."""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, NewType, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_any_set,
    is_sequence,
    list_structure_factory,
)
from cattrs.preconf.json import make_converter
from cattrs.v import format_exception

from wvs_core.errors import ErrorCode, WVSError

Seconds = NewType("Seconds", float)
"""A duration: a number of seconds, or text such as ``"300s"``, ``"5m"``, ``"250ms"``; 0, or from 1 ms to 365 days."""

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
SHORTEST_DURATION = 0.001  # a shorter wait between polls or retries is a busy loop
LONGEST_DURATION = 365 * 86400.0  # a longer lease or backoff overflows PostgreSQL's timestamps; no WVS wait needs more

T = TypeVar("T")


def _structure_seconds(value: Any, _type: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s'")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        else:
            raise ValueError(f"{value!r} is not a duration (examples: 30, '30s', '5m', '250ms')")
    except OverflowError:
        seconds = math.inf
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds != 0 and not SHORTEST_DURATION <= seconds <= LONGEST_DURATION:  # nan fails both comparisons
        raise ValueError(f"{value!r} is not a duration from 1ms to 365 days (or 0)")
    return seconds


def positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator for settings built with ``structure``: ``value`` must be above zero (ValueError naming
    the setting otherwise)."""
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _structure_strict_str(value: Any, type_: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    # StrEnums reach this hook too (str precedes Enum in their MRO).
    return type_(value) if issubclass(type_, enum.Enum) else value


def _structure_json_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _structure_text_int(value: Any, type_: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return _structure_json_int(value, type_)


def _structure_json_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _structure_text_float(value: Any, type_: Any) -> float:
    return float(value) if isinstance(value, str) else _structure_json_float(value, type_)


def _structure_json_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {value!r}")
    return value


def _structure_text_bool(value: Any, type_: Any) -> bool:
    if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return value.lower() in {"1", "true", "yes", "on"}
    return _structure_json_bool(value, type_)


def _is_collection(type_: Any) -> bool:
    return type_ not in (str, bytes) and (is_sequence(type_) or is_any_set(type_))


def _collection_hook(type_: Any, converter: cattrs.BaseConverter) -> Callable[[Any, Any], Any]:
    """Structure a list, tuple or set type from a JSON array only: a string is never taken apart into its
    characters, nor a mapping into its keys."""
    if is_any_set(type_):
        (item,) = get_args(type_) or (Any,)
        build = frozenset if get_origin(type_) in (frozenset, AbstractSet) else set
        inner = converter.get_structure_hook(list[item])  # type: ignore[valid-type]
    else:
        origin = get_origin(type_)
        factory = homogenous_tuple_structure_factory if origin is tuple else list_structure_factory
        inner, build = factory(type_, converter), None

    def structure_collection(value: Any, target: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        structured = inner(value, target)
        return build(structured) if build is not None else structured

    return structure_collection


def _structure_datetime(value: Any, _type: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise ValueError(f"expected a timestamp, got {value!r}")


def _make_converter(*, numbers_from_text: bool) -> cattrs.Converter:
    """A converter with strict scalars (no silent ``1`` → ``"1"`` or ``"1"`` → ``True``), collections from
    arrays only (never a string split into characters), durations and datetimes. With
    ``numbers_from_text`` an int, float or bool may also be written as text (``"8"``, ``"true"``): config
    values from environment variables are text; JSON request bodies are not."""
    converter = make_converter(forbid_extra_keys=True)
    text = numbers_from_text
    converter.register_structure_hook(Seconds, _structure_seconds)
    converter.register_structure_hook(str, _structure_strict_str)
    converter.register_structure_hook(int, _structure_text_int if text else _structure_json_int)
    converter.register_structure_hook(float, _structure_text_float if text else _structure_json_float)
    converter.register_structure_hook(bool, _structure_text_bool if text else _structure_json_bool)
    converter.register_structure_hook_factory(_is_collection, _collection_hook)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
    return converter


_converter = _make_converter(numbers_from_text=True)
_request_converter = _make_converter(numbers_from_text=False)


def describe_error(error: Exception, root: str = "") -> str:
    """Turn a cattrs structuring error into one readable line naming each offending key."""
    if isinstance(error, cattrs.BaseValidationError):
        lines = cattrs.transform_error(error, path=root or "$", format_exception=_format_exception)
        return "; ".join(line.replace("$.", "").replace(" @ $", "") for line in lines)
    return str(error)


def _format_exception(error: BaseException, type_: Any) -> str:
    # Our own validators and hooks write messages worth showing; keep cattrs' wording for the rest.
    if isinstance(error, ValueError) and str(error):
        return str(error)
    return format_exception(error, type_)


def structure(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from plain data; raises ``cattrs`` errors (see ``describe_error``)."""
    return _converter.structure(data, cls)


def structure_request(data: Any, cls: type[T], what: str = "body") -> T:
    """Build ``cls`` from a request body, JSON types only (``"2"`` is not an integer); any mismatch is a
    ``WVS_BAD_REQUEST`` naming the field."""
    if not isinstance(data, dict):
        raise WVSError(ErrorCode.BAD_REQUEST, f"the {what} must be a JSON object")
    try:
        return _request_converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as error:
        raise WVSError(ErrorCode.BAD_REQUEST, f"invalid {what}: {describe_error(error)}") from None


def unstructure(value: Any) -> Any:
    """Turn attrs instances (and datetimes, enums) into JSON-ready data."""
    return _converter.unstructure(value)
