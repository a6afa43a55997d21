"""WVS in one fresh process (so its metrics start at zero), until SIGTERM:
``python -m tests.service_process CONFIG_FILE [PLANE ...]`` (default: every plane)."""

from __future__ import annotations

import sys
from pathlib import Path

from wvs_core.cli.common import load_or_exit, run_service
from wvs_core.runtime import PLANES, Service

if __name__ == "__main__":
    planes = tuple(sys.argv[2:]) or PLANES
    run_service(Service(load_or_exit(Path(sys.argv[1])), planes=planes))
