"""Where WVS's measurements of a run take place: the shared PostgreSQL, the volume, a scratch directory."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import attrs

from bench.postgres import BenchPostgres
from bench.processes import Deployment, PeakMemory


@attrs.frozen
class Stage:
    """The shared PostgreSQL, the volume (``storage``: ``juicefs``, or ``localfs`` without FUSE), a scratch
    directory for configs and process logs, and the peak RSS of the WVS processes (reset every round)."""

    postgres: BenchPostgres
    volume: Path
    storage: str
    scratch: Path
    memory: PeakMemory = attrs.field(factory=PeakMemory)
    _numbers: itertools.count[int] = attrs.field(factory=itertools.count)

    def deployment(self, name: str, dsn: str, quiesce: str = "none", concurrency: int | None = None) -> Deployment:
        """A config for a measurement called ``name`` on the database ``dsn``, with a fresh directory of the
        volume as the executor's mount (and ``worker.concurrency``, when given)."""
        directory = self.scratch / f"{name}-{next(self._numbers)}"
        mount = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.volume))
        return Deployment.write(directory, dsn, mount, self.storage, quiesce, concurrency)
