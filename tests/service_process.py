"""Every plane of WVS in one fresh process (so its metrics start at zero), until SIGTERM:
``python -m tests.service_process CONFIG_FILE``; prints ``ready`` on stderr once serving."""

from __future__ import annotations

import sys
from pathlib import Path

from wvs_core.cli.common import load_or_exit, run_service
from wvs_core.runtime import Service

if __name__ == "__main__":
    run_service(Service(load_or_exit(Path(sys.argv[1]))), on_started="ready")
