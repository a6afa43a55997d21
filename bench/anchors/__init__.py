"""Other Postgres queues measured beside WVS in the same run, on the same embedded PostgreSQL.

Each anchor is an adapter (``Anchor``) over one library, used with that library's recommended tuned
settings; ``measure`` drives it: a backlog drained by worker processes, pickup latency of an idle worker,
single-job enqueue rate under 64 connections, worker CPU per task. The libraries come with the ``bench``
extra (``pip install -e '.[bench]'``); ``load_anchors`` says so when they are missing.
"""

from __future__ import annotations

from bench.anchors.base import Anchor


class AnchorsUnavailable(Exception):
    """The ``bench`` extra (PgQueuer, Procrastinate) is not installed."""


def load_anchors() -> list[Anchor]:
    """PgQueuer's and Procrastinate's adapters, in that order."""
    try:
        from bench.anchors.pgqueuer_anchor import PgQueuerAnchor
        from bench.anchors.procrastinate_anchor import ProcrastinateAnchor
    except ImportError as missing:
        raise AnchorsUnavailable(f"{missing}; install the bench extra: pip install -e '.[bench]'") from missing
    return [PgQueuerAnchor(), ProcrastinateAnchor()]


def anchor_named(name: str) -> Anchor:
    return next(anchor for anchor in load_anchors() if anchor.name == name)
