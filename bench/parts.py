"""The parts of a bench run that ``--only`` selects: each a group of figures measured together."""

from __future__ import annotations

import argparse

Parts = frozenset[str]

PARTS: Parts = frozenset({"drain", "pickup", "accept", "snapshots", "lists", "backlog"})
"""drain: the drains and worker CPU per task; pickup: pickup latency; accept: API accept and the anchors'
enqueue; snapshots: snapshot overhead; lists: list endpoints; backlog: the claim against a backlog."""


def parse_parts(text: str) -> Parts:
    """``"drain,pickup"`` → those parts. Raises argparse.ArgumentTypeError naming an unknown one."""
    asked = frozenset(part.strip() for part in text.split(",") if part.strip())
    if unknown := sorted(asked - PARTS):
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(sorted(PARTS))}")
    if not asked:
        raise argparse.ArgumentTypeError("name at least one part")
    return asked
