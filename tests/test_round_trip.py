"""A snapshot → rollback round trip reproduces the tree exactly, on both storage backends (SPEC §5
"Clones are exact"): the torture corpus of ``tests/fidelity.py`` through snapshot_create and set_current,
the snapshot, the restored tree, the source and the replaced tree compared entry by entry. Prints the
result table per backend (case by snapshot / rollback)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService, make_config
from tests.fidelity import CASES, OUTSIDE_LINK, build_corpus, differences, manifest
from tests.helpers import create_workspace, key, snapshots_dir, wait_task


@pytest.fixture(params=["juicefs", "localfs"])
def volume(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A mount for the backend: a directory on the JuiceFS mount, or one on the local disk."""
    if request.param == "juicefs":
        return "juicefs", request.getfixturevalue("mount")
    (tmp_path / "volume").mkdir()
    return "localfs", tmp_path / "volume"


LIMIT_CASE = OUTSIDE_LINK.split("/")[0]


def outcome(found: dict[str, list[str]], case: str) -> str:
    """``ok``; ``limit`` where only what no backend can keep differs (a hard link's far end outside the tree:
    the clone holds the file once, SPEC §5 keeps links *within* the tree); else ``DIFFERS``."""
    lines = found.get(case, [])
    if not lines:
        return "ok"
    if case == LIMIT_CASE and all(OUTSIDE_LINK in line for line in lines):
        return "limit"
    return "DIFFERS"


def table(backend: str, results: dict[str, dict[str, list[str]]]) -> str:
    lines = [f"round trip on {backend}:", f"  {'case':<28} {'snapshot':<9} rollback"]
    for case in CASES:
        lines.append(f"  {case:<28} {outcome(results['snapshot'], case):<9} {outcome(results['rollback'], case)}")
    return "\n".join(lines)


async def test_snapshot_and_rollback_keep_every_property(
    volume: tuple[str, Path], database: str, tmp_path: Path, start_service: StartService
) -> None:
    backend, mount = volume
    config = make_config(database, mount, storage=backend, plugins={"storage": backend, "quiesce": "none"})
    service = await start_service(config)
    outside = tmp_path / "outside-the-tree"
    outside.mkdir()
    if backend == "juicefs":  # a hard link's far end must be on the same filesystem
        outside = mount / "outside-the-tree"
        outside.mkdir()
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=60) as client:
        await create_workspace(client, "corpus")
        live = mount / "corpus" / "current"
        build_corpus(live, outside)
        source = manifest(live)
        assert len(source) >= 60

        accepted = (await client.post("/v1/workspaces/corpus/snapshots", json={}, headers=key())).json()
        assert (await wait_task(client, accepted["task_id"], timeout=120))["status"] == "SUCCEEDED"
        snapshot = snapshots_dir(mount, "corpus") / accepted["snapshot_id"]
        results = {"snapshot": differences(source, manifest(snapshot))}
        assert differences(source, manifest(live)) == {}, "taking the snapshot changed the source"

        replaced = live.resolve()
        (live / "02-text" / "text.txt").write_text("changed after the snapshot\n")
        os.rename(live / "42-odd-names", live / "renamed")
        before_rollback = manifest(live)
        rollback = await client.post(
            "/v1/workspaces/corpus/current:set", json={"snapshot_id": accepted["snapshot_id"]}, headers=key()
        )
        done = await wait_task(client, rollback.json()["task_id"], timeout=120)
        assert done["status"] == "SUCCEEDED"
        results["rollback"] = differences(source, manifest(live))
        kept = Path(done["result"]["kept_fs_path"])  # the replaced tree, cloned into the snapshot area
        assert not replaced.exists()
        # A clone like a snapshot's: exact, but for the far end of a hard link from outside the tree (a limit).
        kept_differences = differences(before_rollback, manifest(kept))
        assert set(kept_differences) <= {LIMIT_CASE}, f"the replaced tree was changed: {kept_differences}"
        assert differences(source, manifest(snapshot)) == results["snapshot"], "a rollback changed the snapshot"

    print("\n" + table(backend, results))
    for step, found in results.items():
        differing = {case: found[case] for case in found if outcome(found, case) == "DIFFERS"}
        assert differing == {}, f"{step} on {backend}: {differing}"
        assert outcome(found, LIMIT_CASE) == "limit", "the far end of an outside link was expected to be lost"
