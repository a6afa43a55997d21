"""A diff's changes counted, rendered like ``git diff --stat``, and written as JSON and read back.

**Paths in JSON.** Names may be any bytes (SPEC §5) but a JSON string is Unicode text. A change is written
as ``{"path", "change", "type_before", "type_after", "size_before", "size_after", "meta"}`` where ``path``
is the path's bytes as UTF-8 text — exact whenever they are valid UTF-8, which is nearly always. When they
are not, ``path`` shows each undecodable byte as U+FFFD (for display only) and ``path_b64`` carries the
exact bytes in base64: a reader takes ``path_b64`` when it is present, else ``path``.

**Paths in text.** ``display_path`` writes a path as it is when it is printable UTF-8, and otherwise quotes
it the way git does (C escapes, octal for every other byte), so a newline, a terminal escape or a
right-to-left override in a name an agent chose cannot forge or hide a line.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from wvs_diff.compare import Change, ChangeKind

STAT_PATH_WIDTH = 60  # longer paths are shown by their end
_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r"}
_ESCAPES |= {ord('"'): '\\"', ord("\\"): "\\\\"}


@attrs.frozen
class DiffSummary:
    """How many changes of each kind, and the bytes they add and remove: per change, the growth (or
    shrinkage) from ``size_before`` to ``size_after``, an absent size counting 0. A same-size rewrite adds
    and removes nothing: these are sizes, not the bytes that differ."""

    added: int = 0
    removed: int = 0
    modified: int = 0
    type_changed: int = 0
    meta_changed: int = 0
    bytes_added: int = 0
    bytes_removed: int = 0

    @property
    def changes(self) -> int:
        """Every change, of any kind."""
        return self.added + self.removed + self.modified + self.type_changed + self.meta_changed


def summarize(changes: Iterable[Change]) -> DiffSummary:
    """Count ``changes`` (consumed once: a stream of any length)."""
    kinds: Counter[str] = Counter()
    grown = shrunk = 0
    for change in changes:
        kinds[change.change.value] += 1
        delta = (change.size_after or 0) - (change.size_before or 0)
        grown, shrunk = grown + max(delta, 0), shrunk + max(-delta, 0)
    counts = {kind.value: kinds[kind.value] for kind in ChangeKind}
    return DiffSummary(**counts, bytes_added=grown, bytes_removed=shrunk)


def render_stat(changes: Iterable[Change]) -> str:
    """``git diff --stat`` for trees: a line per change (path, a ``/`` after a directory, ``|``, what
    changed and the sizes), then the summary line."""
    listed = list(changes)
    paths = [_stat_path(change) for change in listed]
    width = max((len(path) for path in paths), default=0)
    lines = [f" {path:<{width}} | {_what(change)}" for path, change in zip(paths, listed, strict=True)]
    summary = summarize(listed)
    counts = ", ".join(
        f"{count} {kind.value.replace('_', ' ')}" for kind in ChangeKind if (count := getattr(summary, kind.value))
    )
    lines.append(
        f" {summary.changes} {'entry' if summary.changes == 1 else 'entries'} changed"
        + (f" ({counts})" if counts else "")
        + f", {summary.bytes_added} bytes added(+), {summary.bytes_removed} bytes removed(-)"
    )
    return "\n".join(lines) + "\n"


def display_path(path: str) -> str:
    """``path`` for a terminal: as it is when it is printable UTF-8 without quotes or backslashes, else
    quoted as git quotes it."""
    raw = os.fsencode(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    escaped = (_ESCAPES.get(byte) or (chr(byte) if 0x20 <= byte < 0x7F else f"\\{byte:03o}") for byte in raw)
    return '"' + "".join(escaped) + '"'


def change_to_json(change: Change) -> dict[str, Any]:
    """``change`` as a JSON object (see the module's docstring for ``path`` and ``path_b64``)."""
    raw = change.raw_path
    data: dict[str, Any] = {
        "path": raw.decode("utf-8", "replace"),
        "change": change.change.value,
        "type_before": change.type_before,
        "type_after": change.type_after,
        "size_before": change.size_before,
        "size_after": change.size_after,
        "meta": list(change.meta),
    }
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        data["path_b64"] = base64.b64encode(raw).decode("ascii")
    return data


def change_from_json(data: Mapping[str, Any]) -> Change:
    """The change ``change_to_json`` wrote. Raises ValueError (or KeyError) for anything else."""
    if "path_b64" in data:
        try:
            path = os.fsdecode(base64.b64decode(data["path_b64"], validate=True))
        except binascii.Error as error:
            raise ValueError(f"path_b64 is not base64: {error}") from None
    else:
        path = str(data["path"])
    return Change(
        path,
        ChangeKind(data["change"]),
        data["type_before"],
        data["type_after"],
        data["size_before"],
        data["size_after"],
        tuple(data.get("meta", ())),
    )


def _stat_path(change: Change) -> str:
    path = display_path(change.path)
    if (change.type_after or change.type_before) == "directory":
        path += "/"
    return path if len(path) <= STAT_PATH_WIDTH else "..." + path[-(STAT_PATH_WIDTH - 3) :]


def _what(change: Change) -> str:
    kind, before, after = change.change, change.size_before, change.size_after
    if kind == ChangeKind.ADDED:
        return f"added {change.type_after}" + (f" +{after}" if after is not None else "")
    if kind == ChangeKind.REMOVED:
        return f"removed {change.type_before}" + (f" -{before}" if before is not None else "")
    if kind == ChangeKind.TYPE_CHANGED:
        return f"type_changed {change.type_before} -> {change.type_after}"
    if kind == ChangeKind.META_CHANGED:
        return "meta_changed " + ", ".join(change.meta)
    sizes = f" {before} -> {after}" if before is not None and after is not None else ""
    return f"modified {change.type_after}{sizes}" + (f" ({', '.join(change.meta)})" if change.meta else "")
