"""Rows to domain models, in one place."""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

import attrs
from sqlalchemy.engine import Row

from wvs_core.convert import structure

T = TypeVar("T")


def from_row(row: Row[Any], cls: type[T]) -> T:
    """Build the attrs model ``cls`` from a result row, ignoring columns the model does not carry."""
    names = _field_names(cast(type, cls))
    return structure({key: value for key, value in row._mapping.items() if key in names}, cls)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(field.name for field in attrs.fields(cast(Any, cls)))
