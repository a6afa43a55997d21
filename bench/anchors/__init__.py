"""Other Postgres queues measured beside WVS in the same run, on the same embedded PostgreSQL.

Each anchor is an adapter (``Anchor``) over one library, used with that library's recommended tuned
settings; ``measure`` drives it: a backlog drained by worker processes, pickup latency of an idle worker,
single-job enqueue rate under 64 connections, worker CPU per task. The libraries come with the ``bench``
extra (``pip install -e '.[bench]'``); ``load_anchors`` says so when they are missing.
"""

from __future__ import annotations

import importlib

from bench.anchors.base import Anchor

# Each anchor's adapter by its command-line name, imported on demand: a child process needs only its own library.
ADAPTERS = {
    "pgqueuer": ("bench.anchors.pgqueuer_anchor", "PgQueuerAnchor"),
    "procrastinate": ("bench.anchors.procrastinate_anchor", "ProcrastinateAnchor"),
}


class AnchorsUnavailable(Exception):
    """The ``bench`` extra (PgQueuer, Procrastinate) is not installed."""


def anchor_named(name: str) -> Anchor:
    module, adapter = ADAPTERS[name]
    try:
        anchor: Anchor = getattr(importlib.import_module(module), adapter)()
    except ImportError as missing:
        raise AnchorsUnavailable(f"{missing}; install the bench extra: pip install -e '.[bench]'") from missing
    return anchor


def load_anchors() -> list[Anchor]:
    """PgQueuer's and Procrastinate's adapters, in that order."""
    return [anchor_named(name) for name in ADAPTERS]
