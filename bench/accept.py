"""The API's accept rate of ``POST /v1/workspaces/{wsid}/snapshots``: ``wvs api`` alone in its process, loaded by
wrk (an HTTP client in Python would measure itself), no worker running — as the anchors' enqueue is measured."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from bench import seed
from bench.processes import plane
from bench.stage import Stage

WRK_THREADS = 2

# Requests spread over the workspaces PREFIX-0 … PREFIX-(N-1); every POST with its own Idempotency-Key.
WRK_POST = """
counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  counter = counter + 1
  local key = "bench-" .. math.random(1, 2^31) .. "-" .. counter
  return wrk.format("POST", "/v1/workspaces/PREFIX-" .. (counter % WORKSPACES) .. "/snapshots",
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, "{}")
end
"""


def wrk_command(url: str, script: str, connections: int, seconds: float) -> list[str]:
    return ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds:g}s", "-s", script, url]


async def accept_rates(
    stage: Stage, spreads: Sequence[int], connections: int, seconds: float
) -> dict[int, tuple[float, int]]:
    """For each number of workspaces in ``spreads``: snapshot requests answered per second over that many ACTIVE
    workspaces (fresh ones each time), from ``connections`` concurrent connections for ``seconds``, and how many
    answers were not 202. One ``wvs api`` on one database for all."""
    dsn = await stage.postgres.fresh_wvs_database("wvs_accept")
    deployment = stage.deployment("accept", dsn)
    conn = await asyncpg.connect(dsn)
    try:
        for workspaces in spreads:
            await seed.add_workspaces(conn, f"spread{workspaces}", workspaces)
    finally:
        await conn.close()
    found = {}
    async with plane(deployment, "api", stage.memory) as api:
        for workspaces in spreads:
            script = WRK_POST.replace("PREFIX", f"spread{workspaces}").replace("WORKSPACES", str(workspaces))
            found[workspaces] = await wrk(api.url, script, connections, seconds, deployment.logs)
    return found


async def wrk(url: str, script: str, connections: int, seconds: float, scratch: Path) -> tuple[float, int]:
    """Requests per second of a wrk run of the Lua ``script``, and its non-2xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=scratch) as lua:
        lua.write(script)
        lua.flush()
        run = await asyncio.create_subprocess_exec(
            *wrk_command(url, lua.name, connections, seconds), stdout=asyncio.subprocess.PIPE
        )
        output = (await run.communicate())[0].decode()
    if run.returncode != 0 or (rate := re.search(r"^Requests/sec:\s+(\S+)", output, re.MULTILINE)) is None:
        raise RuntimeError(f"wrk failed (exit {run.returncode}):\n{output}")
    errors = re.search(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", output, re.MULTILINE)
    return float(rate[1]), int(errors[1]) if errors else 0
