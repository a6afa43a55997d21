"""Progress lines on stderr, each with the wall-clock time, so a slow step shows in a run's log."""

from __future__ import annotations

import sys
import time


def progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
