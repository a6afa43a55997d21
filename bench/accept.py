"""The API's accept rate of ``POST /v1/workspaces/{wsid}/snapshots``: ``wvs api`` alone in its process, loaded by
wrk (an HTTP client in Python would measure itself), no worker running — as the anchors' enqueue is measured."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import attrs

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


@attrs.frozen
class Accepted:
    """One wrk run against ``wvs api``: requests answered per second, answers that were not 202, and the API
    process's user + system CPU time per request answered."""

    rate: float
    errors: int
    cpu_seconds_per_request: float


async def accept_rates(stage: Stage, spreads: Sequence[int], connections: int, seconds: float) -> dict[int, Accepted]:
    """For each number of workspaces in ``spreads``: snapshot requests answered over that many ACTIVE workspaces
    (fresh ones each time), from ``connections`` concurrent connections for ``seconds``. One ``wvs api`` on one
    database for all."""
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
            cpu_before = api.cpu_seconds()
            rate, requests, errors = await wrk(api.url, script, connections, seconds, deployment.logs)
            found[workspaces] = Accepted(rate, errors, (api.cpu_seconds() - cpu_before) / max(requests, 1))
    return found


async def wrk(url: str, script: str, connections: int, seconds: float, scratch: Path) -> tuple[float, int, int]:
    """Requests per second of a wrk run of the Lua ``script``, the requests answered, and its non-2xx answers."""
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
    answered = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    return float(rate[1]), int(answered[1]) if answered else 0, int(errors[1]) if errors else 0
