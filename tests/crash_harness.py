"""Run one executor op in this process and die like kill -9 (``os._exit``, no cleanup) at a chosen step.

python -m tests.crash_harness '{"mount": ..., "wsid": ..., "op": ..., "params": {...}, "crash_at": ...}'
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from wvs_core.config import config_from_dict
from wvs_core.models import ExecutionRequest
from wvs_core.plugins import PluginRegistry
from wvs_executor.runner import OpRunner

CRASH_EXIT = 137


def main() -> None:
    spec = json.loads(sys.argv[1])
    config = config_from_dict(
        {"executor": {"mount_path": spec["mount"], "quiesce_timeout": "10s"}, "plugins": {"storage": spec["storage"]}}
    )

    def crash_at(step: str) -> None:
        if step == spec["crash_at"]:
            os._exit(CRASH_EXIT)

    runner = OpRunner(config, PluginRegistry.load(config.plugins), on_step=crash_at)
    request = ExecutionRequest(task_id=spec["task_id"], wsid=spec["wsid"], op=spec["op"], params=spec["params"])
    result = asyncio.run(runner.run(request))
    print(json.dumps({"success": result.success, "error_code": result.error_code}))


if __name__ == "__main__":
    main()
