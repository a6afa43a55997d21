"""How ``wvsctl`` prints: tables for people, stable JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_options(command: F) -> F:
    """Add ``--json`` and its alias ``--output json``."""
    command = click.option(
        "--output", "-o", type=click.Choice(["table", "json"]), default="table", help="Output format."
    )(command)
    return click.option("--json", "as_json", is_flag=True, help="Same as --output json.")(command)


def write_options(command: F) -> F:
    """``--wait``, ``--idempotency-key`` and the output options of every asynchronous write."""
    command = output_options(command)
    command = click.option("--idempotency-key", help="Reuse a key to make a retry safe (default: a fresh key).")(
        command
    )
    return click.option("--wait", is_flag=True, help="Follow the task until it ends, showing progress.")(command)


def wants_json(as_json: bool, output: str) -> bool:
    """True when the caller asked for JSON either way."""
    return as_json or output == "json"


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (the documented, stable machine format)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Print ``rows`` as an aligned table of ``columns``."""
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    click.echo("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip())


def emit_record(record: dict[str, Any], fields: Sequence[str]) -> None:
    """Print one object as ``field: value`` lines."""
    width = max(len(field) for field in fields)
    for field in fields:
        click.echo(f"{field.ljust(width)}  {cell(record.get(field))}")


def show(record: dict[str, Any], fields: Sequence[str], as_json: bool, output: str) -> None:
    """One object: JSON when asked for, ``field: value`` lines otherwise."""
    if wants_json(as_json, output):
        emit_json(record)
    else:
        emit_record(record, fields)


def cell(value: Any) -> str:
    """One value as printed in a table: ``-`` for none, JSON for objects and lists."""
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
