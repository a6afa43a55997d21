"""JSON Schema (draft 2020-12 subset) of an op's params type, for ``GET /v1/ops``: what SDKs, the CLI and
MCP tools build their forms and checks from.

Covers what params types are made of: ``str``, ``int``, ``float``, ``bool``, ``None``, unions, ``list[T]``,
``dict[str, T]``, ``Literal`` and nested attrs classes. A field's ``metadata={"description": …}`` becomes
its description, a field marked ``CHOSEN_BY_SERVER`` is ``readOnly`` (a request must not name it), and a plain
default (a string, number or boolean, not a factory's) is its ``default``.
Validators are not expressed: the API still validates with the params type itself.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs

from wvs_core.ops import chosen_by_server

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Any: {},
}


def params_schema(cls: type) -> dict[str, Any]:
    """The schema of the attrs class ``cls``: an object of its fields, those without a default required,
    no other keys. Raises TypeError for a type it cannot describe."""
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {field.name: _field_schema(field) for field in fields},
        "additionalProperties": False,
    }
    if required := [field.name for field in fields if field.default is attrs.NOTHING]:
        schema["required"] = required
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip().split("\n\n")[0]
    return schema


def _field_schema(field: attrs.Attribute[Any]) -> dict[str, Any]:
    schema = _type_schema(field.type)
    if description := field.metadata.get("description"):
        schema = {**schema, "description": description}
    if chosen_by_server(field):
        schema = {**schema, "readOnly": True}
    elif type(field.default) in (str, int, float, bool):  # a plain default, not a factory's
        schema = {**schema, "default": field.default}
    return schema


def _type_schema(annotation: Any) -> dict[str, Any]:
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    if attrs.has(annotation):
        return params_schema(annotation)
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(argument) for argument in arguments]}
    if origin is list:
        return {"type": "array", "items": _type_schema(arguments[0])}
    if origin is dict and arguments[0] is str:
        return {"type": "object", "additionalProperties": _type_schema(arguments[1])}
    if origin is typing.Literal:
        return {"enum": list(arguments)}
    raise TypeError(f"no JSON Schema for params of type {annotation!r}")
