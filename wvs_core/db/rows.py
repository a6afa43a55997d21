"""Rows to domain models, in one place."""

from __future__ import annotations

import functools
from typing import Any, TypeVar, cast

import asyncpg
import attrs
from sqlalchemy.engine import Row

from wvs_core.convert import structure
from wvs_core.models import Task, TaskStatus

T = TypeVar("T")


def from_row(row: Row[Any], cls: type[T]) -> T:
    """Build the attrs model ``cls`` from a result row, ignoring columns the model does not carry."""
    names = _field_names(cast(type, cls))
    return structure({key: value for key, value in row._mapping.items() if key in names}, cls)


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(field.name for field in attrs.fields(cast(Any, cls)))


def task_from_row(row: Row[Any] | asyncpg.Record) -> Task:
    """A ``wvs.tasks`` row (SQLAlchemy's or asyncpg's; other columns ignored) as a ``Task``, built directly: the
    database already gave each column its type, so only ``status`` needs converting. Every claim, end and accept
    builds tasks; cattrs' checks cost more than the rest of that Python."""
    mapping = row._mapping if isinstance(row, Row) else row
    values = {name: mapping[name] for name in _field_names(Task)}
    values["status"] = TaskStatus(values["status"])
    return Task(**values)
