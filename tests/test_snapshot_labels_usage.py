"""Snapshot labels (given at creation, validated, filtered on) and usage (entries and bytes as the clone
counted them, and a workspace's total), end to end on PostgreSQL and JuiceFS."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fidelity import build_corpus
from tests.helpers import create_workspace, key, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.treewalk import walk


async def snapshot(wvs: httpx.AsyncClient, wsid: str, **body: Any) -> dict[str, Any]:
    """Take a snapshot through the API (answering the freeze) and return its listed item."""
    with QuiesceResponder(wvs.mount_path / wsid).running_in_thread():  # type: ignore[attr-defined]
        response = await wvs.post(f"/v1/workspaces/{wsid}/snapshots", json=body, headers=key())
        assert response.status_code == 202, response.text
        task = await wait_task(wvs, response.json()["task_id"])
    assert task["status"] == "SUCCEEDED", task
    listed = (await wvs.get(f"/v1/workspaces/{wsid}/snapshots", params={"limit": "100"})).json()["items"]
    item = next(item for item in listed if item["snapshot_id"] == response.json()["snapshot_id"])
    figures = {name: task["result"][name] for name in ("entries", "bytes")}
    assert figures == {name: item[name] for name in ("entries", "bytes")}, "the task's result as typed as the list"
    return item


BAD_LABELS = [
    ({"Upper": "x"}, "label key 'Upper'"),
    ({"-dash": "x"}, "label key '-dash'"),
    ({"": "x"}, "label key ''"),
    ({"k" * 64: "x"}, "label key 'kkkk"),
    ({"a b": "x"}, "label key 'a b'"),
    ({"ok": "v" * 257}, "longer than 256"),
    ({"ok": 1}, "labels"),
    ({f"k{n}": "v" for n in range(17)}, "at most 16 labels"),
    (["k=v"], "labels"),
]


@pytest.mark.parametrize(("labels", "named"), BAD_LABELS, ids=[named for _, named in BAD_LABELS])
async def test_bad_labels_are_refused_naming_the_problem(wvs, labels: Any, named: str) -> None:
    await create_workspace(wvs, "labels-bad")
    response = await wvs.post("/v1/workspaces/labels-bad/snapshots", json={"labels": labels}, headers=key())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"
    assert named in response.json()["error"]["message"]


async def test_labels_are_stored_and_filtered_on(wvs) -> None:
    await create_workspace(wvs, "labels")
    edge = {"k" * 63: "v" * 256, "a.b_c-9": "", "eq": "x=y"} | {f"n{n}": "1" for n in range(13)}
    plain = await snapshot(wvs, "labels")
    nightly = await snapshot(wvs, "labels", labels={"kind": "nightly", "team": "a"})
    manual = await snapshot(wvs, "labels", labels={"kind": "manual", "team": "a"})
    full = await snapshot(wvs, "labels", labels=edge)
    assert (plain["labels"], nightly["labels"], full["labels"]) == ({}, {"kind": "nightly", "team": "a"}, edge)

    async def listed(*filters: str) -> list[str]:
        response = await wvs.get("/v1/workspaces/labels/snapshots", params=[("label", f) for f in filters])
        assert response.status_code == 200, response.text
        return [item["snapshot_id"] for item in response.json()["items"]]

    assert await listed("team=a") == [manual["snapshot_id"], nightly["snapshot_id"]]
    assert await listed("team=a", "kind=nightly") == [nightly["snapshot_id"]], "filters are ANDed"
    assert await listed("kind=weekly") == []
    assert await listed("eq=x=y") == [full["snapshot_id"]], "the value runs to the end"
    assert await listed("a.b_c-9=") == [full["snapshot_id"]], "an empty value is a value"
    page = (await wvs.get("/v1/workspaces/labels/snapshots", params={"label": "team=a", "limit": "1"})).json()
    rest = await wvs.get("/v1/workspaces/labels/snapshots", params={"label": "team=a", "cursor": page["next_cursor"]})
    assert [item["snapshot_id"] for item in page["items"] + rest.json()["items"]] == await listed("team=a")
    for bad in (["team"], ["Team=a"], ["team=a", "team=b"], [f"k{n}=v" for n in range(17)]):
        response = await wvs.get("/v1/workspaces/labels/snapshots", params=[("label", f) for f in bad])
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"


async def test_usage_of_a_known_tree_and_the_workspace_total(wvs) -> None:
    workspace = await create_workspace(wvs, "usage")
    assert workspace["usage"] == {"snapshots": 0, "entries": None, "bytes": None}
    current = wvs.mount_path / "usage" / "current"
    (current / "docs").mkdir()
    (current / "docs" / "a.bin").write_bytes(b"a" * 5000)
    (current / "b.txt").write_bytes(b"b" * 300)
    os.link(current / "docs" / "a.bin", current / "a-again.bin")  # a second name: its bytes count once
    os.symlink("b.txt", current / "link")
    (current / "empty").mkdir()
    first = await snapshot(wvs, "usage")
    # docs, docs/a.bin, b.txt, a-again.bin, link, empty (plus whatever the fresh tree held: nothing)
    assert (first["entries"], first["bytes"]) == (6, 5300), first
    (current / "c.bin").write_bytes(b"c" * 700)
    second = await snapshot(wvs, "usage")
    assert (second["entries"], second["bytes"]) == (7, 6000), second

    total = (await wvs.get("/v1/workspaces/usage")).json()["usage"]
    assert total == {"snapshots": 2, "entries": 13, "bytes": 11300}
    listed = (await wvs.get("/v1/workspaces", params={"limit": "100"})).json()["items"]
    assert all("usage" not in item for item in listed), "the list stays one index walk: no per-row aggregate"


def reference_usage(tree: Path) -> tuple[int, int]:
    """Counted by walking ``tree`` by descriptors: its entries (a file with n names counts n) and the bytes of its
    regular files (each inode once)."""
    entries, size, seen = 0, 0, set()
    root = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for visit in walk(root):
            if visit.leaving:
                continue
            entries += 1
            key = (visit.info.st_dev, visit.info.st_ino)
            if stat.S_ISREG(visit.info.st_mode) and key not in seen:
                seen.add(key)
                size += visit.info.st_size
    finally:
        os.close(root)
    return entries, size


async def test_usage_of_the_fidelity_corpus_is_a_reference_count_of_its_tree(wvs, mount: Path) -> None:
    """Every kind of entry of the data-fidelity corpus (hard links across directories and from outside the tree,
    hard-linked symlinks, devices, sparse files, paths deeper than PATH_MAX) counted as a walk counts it — also
    for a snapshot taken at once after writes, when JuiceFS's directory statistics are not flushed yet (which
    is why they are not used: docs/architecture.md, "Usage")."""
    await create_workspace(wvs, "usage-corpus")
    current = mount / "usage-corpus" / "current"
    outside = mount.parent / f"{mount.name}-outside"
    outside.mkdir()
    build_corpus(current, outside)
    corpus = await snapshot(wvs, "usage-corpus")
    assert (corpus["entries"], corpus["bytes"]) == reference_usage(Path(corpus["fs_path"]))
    fresh = current / "written-just-before"
    fresh.mkdir()
    for n in range(100):
        (fresh / f"f{n}").write_bytes(b"z" * n)
    at_once = await snapshot(wvs, "usage-corpus")
    assert (at_once["entries"], at_once["bytes"]) == reference_usage(Path(at_once["fs_path"]))
    assert at_once["entries"] == corpus["entries"] + 101 and at_once["bytes"] == corpus["bytes"] + sum(range(100))
