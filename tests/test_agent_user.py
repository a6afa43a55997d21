"""An agent that is not root (SPEC §13: "an agent, any uid") works in its view: with ``executor.agent_owner``
its live trees and ``.wvs`` are its own, it answers the freeze handshake, and snapshot and rollback keep
its files its own. Driven as a sandbox would: the view bind-mounted alone, the agent a uid-1000 process."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService, make_config
from tests.helpers import create_workspace, key, snapshots_dir, wait_task

AGENT = ("1000", "1000")
BIN = Path(sys.executable).parent


AS_AGENT = ["setpriv", f"--reuid={AGENT[0]}", f"--regid={AGENT[1]}", "--clear-groups"]


async def as_agent(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the agent's user."""
    return await asyncio.to_thread(subprocess.run, [*AS_AGENT, *argv], capture_output=True, text=True, timeout=30)


@pytest.fixture
def sandbox() -> Iterator[Path]:
    """An empty directory anyone may enter, to bind-mount an agent view on; unmounted and removed after."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run the agent as another user")
    path = Path(tempfile.mkdtemp(prefix="wvs-sandbox-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True)
        path.rmdir()


async def test_a_non_root_agent_writes_answers_freezes_and_keeps_its_files(
    database: str, mount: Path, sandbox: Path, start_service: StartService
) -> None:
    config = make_config(database, mount, executor={"agent_owner": ":".join(AGENT)})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "nonroot")
        await asyncio.to_thread(subprocess.run, ["mount", "--bind", str(mount / "nonroot"), str(sandbox)], check=True)
        written = await as_agent("sh", "-c", f"echo 'from the agent' > {sandbox}/current/hello.txt")
        assert written.returncode == 0, written.stderr
        assert (await as_agent("ls", str(mount / ".wvs"))).returncode != 0, "WVS's area is closed to the agent"

        agent = await asyncio.create_subprocess_exec(
            *AS_AGENT, str(BIN / "wvs"), "agent", str(sandbox), stderr=subprocess.DEVNULL
        )
        try:
            accepted = (await client.post("/v1/workspaces/nonroot/snapshots", json={}, headers=key())).json()
            done = await wait_task(client, accepted["task_id"])
            assert done["status"] == "SUCCEEDED", done["error"]
            snapshot = snapshots_dir(mount, "nonroot") / accepted["snapshot_id"]
            assert os.stat(snapshot / "hello.txt").st_uid == 1000

            assert (await as_agent("sh", "-c", f"echo oops > {sandbox}/current/hello.txt")).returncode == 0
            rollback = await client.post(
                "/v1/workspaces/nonroot/current:set", json={"snapshot_id": accepted["snapshot_id"]}, headers=key()
            )
            assert (await wait_task(client, rollback.json()["task_id"]))["status"] == "SUCCEEDED"
        finally:
            agent.terminate()
            await agent.wait()
        assert (await as_agent("cat", f"{sandbox}/current/hello.txt")).stdout == "from the agent\n"
        after = await as_agent("sh", "-c", f"echo 'still mine' > {sandbox}/current/after-rollback.txt")
        assert after.returncode == 0, after.stderr
