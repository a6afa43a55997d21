"""Owner isolation (SPEC §2 Ownership): which workspaces a caller sees and acts on.

A ``Scope`` is built once per request from its token (``Principal.scope``) and handed to every ``Store``
method, which applies it in SQL. Outside its scope a workspace — with its snapshots, tasks and audit rows —
does not exist for the caller: it answers 404 and is absent from every list.
"""

from __future__ import annotations

from typing import Any

import attrs

OWNER_MAX_LENGTH = 256


def check_owner(_instance: object, attribute: Any, value: str) -> None:
    """attrs validator: an owner name (a workspace's ``owner``, a token's ``subject`` or one of its
    ``owners``) is 1 to 256 printable characters, not all blank."""
    if not value.strip() or len(value) > OWNER_MAX_LENGTH or not value.isprintable():
        name = getattr(attribute, "name", "owner")
        raise ValueError(f"{name} must be 1 to {OWNER_MAX_LENGTH} printable characters, got {value[:64]!r}")


@attrs.frozen
class Scope:
    """The owners whose workspaces a caller sees: ``owners``, or every workspace when it is None (an
    ``admin`` token, or an API without auth)."""

    owners: frozenset[str] | None

    def sees(self, owner: str) -> bool:
        """Whether a workspace of ``owner`` exists for the caller (and it may create one for ``owner``)."""
        return self.owners is None or owner in self.owners


EVERYTHING = Scope(owners=None)
"""The scope of an admin token, and of every caller when the API runs without auth."""
