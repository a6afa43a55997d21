"""``ExecutionContext.clone`` and ``new_tree``: the one crash-safe way an op builds a tree (a temporary name in
WVS's area, checked, renamed into place, completed), on both backends — localfs on the local disk, juicefs on
a real mount. Interrupted anywhere (an exception, a cancel request, a cancelled await) it leaves no temporary
tree and nothing incomplete at the final name, and running it again finishes the job."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from prometheus_client import REGISTRY

from tests.helpers import in_flight, populate_tree, tree_signature
from wvs_controlfile import NoQuiesce
from wvs_core.agentview import AgentView
from wvs_core.cancellation import OpCanceled
from wvs_core.ids import uuid7
from wvs_core.layout import LIVE, VolumeLayout, WorkspaceLayout, snapshot_metadata
from wvs_core.locks import try_workspace_lock, workspace_lock
from wvs_core.ops import ExecutionContext, OpFailed
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError, TreeUsage
from wvs_core.trees import LiveTree, SnapshotTree, Tree
from wvs_juicefs.backend import JuiceFSBackend
from wvs_localfs import LocalFSBackend

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugin-hooks.md"
OP = "context_test"
AGENT = (1000, 1000)
Build = Callable[[ExecutionContext], Coroutine[Any, Any, bool]]  # a clone or a new_tree, given its context


@attrs.define
class Workspace:
    """A workspace on a volume: its layout, its open agent view, the backend, and what happened in order."""

    layout: WorkspaceLayout
    view: AgentView
    storage: StorageBackend
    events: list[str] = attrs.field(factory=list)  # steps reached and quiesce calls

    @property
    def live(self) -> Path:
        return self.layout.root / LIVE

    def context(self, on_step: Callable[[str], None] | None = None, **fields: Any) -> ExecutionContext:
        def step(name: str) -> None:
            self.events.append(name)
            if on_step is not None:
                on_step(name)

        defaults: dict[str, Any] = {"storage": self.storage, "quiesce": RecordingQuiesce(self.events)}
        return ExecutionContext(
            task_id=uuid7(),
            wsid=self.layout.wsid,
            op_name=OP,
            params={},
            layout=self.layout,
            view=self.view,
            quiesce_timeout=5,
            on_step=step,
            **{**defaults, **fields},
        )

    def source(self) -> LiveTree:
        """A populated live tree to clone from."""
        live_id = uuid7()
        (self.live / live_id).mkdir()
        populate_tree(self.live / live_id)
        return LiveTree(live_id)

    def final(self, tree: Tree) -> Path:
        if isinstance(tree, SnapshotTree):
            return self.layout.snapshot(tree.snapshot_id)
        assert isinstance(tree, LiveTree)
        return self.live / tree.live_id


class RecordingQuiesce(NoQuiesce):
    """No handshake; records each freeze and resume among the steps."""

    def __init__(self, events: list[str]) -> None:
        super().__init__({})
        self.events = events

    async def freeze(self, view: AgentView, task_id: str, timeout: float) -> None:
        self.events.append("freeze()")

    async def resume(self, view: AgentView, task_id: str) -> None:
        self.events.append("resume()")


@pytest.fixture(params=["localfs", "juicefs"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    if request.param == "juicefs":
        storage: StorageBackend = JuiceFSBackend({})
        mount: Path = request.getfixturevalue("mount")
    else:
        storage, mount = LocalFSBackend({}), tmp_path
    VolumeLayout(mount).ensure_area()
    layout = WorkspaceLayout(mount, "ctx")
    layout.ensure_area_dirs()
    with AgentView.open(layout, create=True, agent=AGENT) as view:
        view.directory(LIVE, create=True)
        yield Workspace(layout, view, storage)


def clone_metrics() -> tuple[float, float]:
    """(clones timed, entries cloned) so far under the test op's name."""
    count = REGISTRY.get_sample_value("wvs_clone_duration_seconds_count", {"op": OP}) or 0.0
    return count, REGISTRY.get_sample_value("wvs_clone_entries_total", {"op": OP}) or 0.0


def nothing_at(path: Path) -> bool:
    return not os.path.lexists(path)


def entries_below(root: Path) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(root))


async def test_clone_freezes_for_the_read_renames_after_the_resume_and_counts(workspace: Workspace) -> None:
    source = workspace.source()
    snapshot = SnapshotTree(uuid7(), "the message")
    before = clone_metrics()

    assert await workspace.context().clone(source, snapshot, freeze=True)

    final = workspace.final(snapshot)
    assert tree_signature(final) == tree_signature(workspace.final(source))
    metadata = snapshot_metadata(workspace.layout, snapshot.snapshot_id)
    assert metadata is not None and metadata["message"] == "the message" and metadata["wsid"] == "ctx"
    assert in_flight(workspace.layout.mount, "ctx") == []
    assert workspace.events == ["cleaned", "freeze()", "frozen", "cloned", "resume()", "resumed", "renamed", "sealed"]
    count, entries = clone_metrics()
    assert count == before[0] + 1
    assert entries == before[1] + entries_below(final)

    workspace.events.clear()
    assert not await workspace.context().clone(source, snapshot, freeze=True), "complete already: nothing to do"
    assert workspace.events == [] and clone_metrics() == (count, entries)


class Uncounting(StorageBackend):
    """The real backend, reporting nothing of what it cloned (as one that could only count by walking)."""

    name = "uncounting"

    def __init__(self, real: StorageBackend) -> None:
        super().__init__({})
        self.real = real

    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        await self.real.clone_tree(source, destination)
        return TreeUsage()

    async def make_tree(self, destination: Path) -> None:
        await self.real.make_tree(destination)

    async def remove_tree(self, path: Path) -> None:
        await self.real.remove_tree(path)

    def capabilities(self) -> StorageCapabilities:
        return self.real.capabilities()


async def test_entries_a_backend_does_not_report_are_not_observed(workspace: Workspace) -> None:
    before = clone_metrics()
    ctx = workspace.context(storage=Uncounting(workspace.storage))

    assert await ctx.clone(workspace.source(), SnapshotTree(uuid7()))

    assert clone_metrics() == (before[0] + 1, before[1]), "timed, but no entries made up"


async def test_clone_of_a_snapshot_into_a_live_tree_is_adopted_into_the_view(workspace: Workspace) -> None:
    snapshot = SnapshotTree(uuid7())
    ctx = workspace.context()
    await ctx.clone(workspace.source(), snapshot)
    live = LiveTree(uuid7())

    assert await ctx.clone(snapshot, live)

    assert tree_signature(workspace.final(live)) == tree_signature(workspace.final(snapshot))
    assert os.stat(workspace.final(live)).st_uid == 0, "a clone keeps its source's owners"
    assert in_flight(workspace.layout.mount, "ctx") == []
    assert await ctx.has_tree(live)


async def test_clone_from_a_descriptor_leaves_it_open(workspace: Workspace) -> None:
    source = workspace.source()
    fd = workspace.view.open_live_tree(source.live_id)
    try:
        assert await workspace.context().clone(fd, SnapshotTree(uuid7()))
        os.fstat(fd)  # still the caller's
    finally:
        os.close(fd)


async def test_a_source_that_is_not_a_complete_snapshot_fails_for_good(workspace: Workspace) -> None:
    with pytest.raises(OpFailed, match="not a complete snapshot") as caught:
        await workspace.context().clone(SnapshotTree(uuid7()), LiveTree(uuid7()))
    assert caught.value.reason == "SNAPSHOT_MISSING" and not caught.value.retryable
    assert in_flight(workspace.layout.mount, "ctx") == [] and os.listdir(workspace.live) == []


class Interrupted(Exception):
    """Raised by a test where an op's step might fail."""


class Interrupting(StorageBackend):
    """The real backend, except that a clone or a make, once done, is followed by ``then()``: the temporary
    tree is there, whole, when the interruption comes."""

    name = "interrupting"

    def __init__(self, real: StorageBackend, then: Callable[[], Awaitable[None]]) -> None:
        super().__init__({})
        self.real = real
        self.then = then

    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        usage = await self.real.clone_tree(source, destination)
        await self.then()
        return usage

    async def make_tree(self, destination: Path) -> None:
        await self.real.make_tree(destination)
        await self.then()

    async def remove_tree(self, path: Path) -> None:
        await self.real.remove_tree(path)

    def capabilities(self) -> StorageCapabilities:
        return self.real.capabilities()


async def interrupt(workspace: Workspace, how: str, build: Build) -> None:
    """Run ``build(ctx)`` and interrupt it ``how`` once its tree is built under the temporary name (or, for
    ``step-fails``, once it is renamed into place); the interruption must come out of it."""
    cancel, built = asyncio.Event(), asyncio.Event()

    async def then() -> None:
        if how == "storage-fails":
            raise StorageError("CLONE_FAILED", "injected")
        if how == "cancel-requested":
            cancel.set()
            return
        built.set()
        await asyncio.Event().wait()  # until cancelled

    def fail(step: str) -> None:
        if how == "step-fails" and step == "renamed":
            raise Interrupted(step)

    storage = workspace.storage if how == "step-fails" else Interrupting(workspace.storage, then)
    running = asyncio.create_task(build(workspace.context(fail, storage=storage, cancel_requested=cancel)))
    if how == "task-cancelled":
        await asyncio.wait_for(built.wait(), 30)
        assert in_flight(workspace.layout.mount, "ctx"), "the temporary tree is there when the cancel comes"
        running.cancel()
    expected = {
        "storage-fails": StorageError,
        "cancel-requested": OpCanceled,
        "task-cancelled": asyncio.CancelledError,
        "step-fails": Interrupted,
    }[how]
    with pytest.raises(expected):
        await running


INTERRUPTIONS = ["storage-fails", "cancel-requested", "task-cancelled"]


@pytest.mark.parametrize("destination", ["snapshot", "live"])
@pytest.mark.parametrize("how", INTERRUPTIONS)
async def test_an_interrupted_clone_leaves_nothing_half_made_and_a_rerun_completes(
    workspace: Workspace, how: str, destination: str
) -> None:
    source = workspace.source()
    tree: Tree = SnapshotTree(uuid7()) if destination == "snapshot" else LiveTree(uuid7())

    async def clone(ctx: ExecutionContext) -> bool:
        return await ctx.clone(source, tree)

    await interrupt(workspace, how, clone)

    assert in_flight(workspace.layout.mount, "ctx") == [], "no temporary tree"
    assert nothing_at(workspace.final(tree)), "nothing at the final name"
    assert await workspace.context().clone(source, tree)
    assert tree_signature(workspace.final(tree)) == tree_signature(workspace.final(source))


async def test_a_snapshot_whose_metadata_was_never_written_is_removed(workspace: Workspace) -> None:
    """Interrupted between the rename and the metadata, the tree at the final name is incomplete: it goes."""
    source, snapshot = workspace.source(), SnapshotTree(uuid7())

    async def clone(ctx: ExecutionContext) -> bool:
        return await ctx.clone(source, snapshot)

    await interrupt(workspace, "step-fails", clone)

    assert nothing_at(workspace.final(snapshot)) and in_flight(workspace.layout.mount, "ctx") == []
    assert await workspace.context().clone(source, snapshot)
    assert snapshot_metadata(workspace.layout, snapshot.snapshot_id) is not None


async def test_a_crash_after_the_rename_is_finished_by_a_rerun(workspace: Workspace) -> None:
    """What a killed executor leaves (a tree renamed into place, no metadata; a temporary tree) is cleaned
    up by the next run, which completes the snapshot."""
    source, snapshot = workspace.source(), SnapshotTree(uuid7())
    half = workspace.final(snapshot)
    half.mkdir()
    (half / "partial").write_text("x")
    leftover = snapshot.temporary(workspace.layout)
    leftover.mkdir()

    assert await workspace.context().clone(source, snapshot)

    assert tree_signature(half) == tree_signature(workspace.final(source))
    assert in_flight(workspace.layout.mount, "ctx") == []


async def test_prepare_changes_the_clone_before_it_is_renamed_into_place(workspace: Workspace) -> None:
    source, live = workspace.source(), LiveTree(uuid7())
    not_yet_in_place = []

    def prune(temporary: Path) -> None:
        not_yet_in_place.append(nothing_at(workspace.final(live)))
        (temporary / "big.bin").unlink()

    assert await workspace.context().clone(source, live, prepare=prune)

    assert not_yet_in_place == [True]
    assert nothing_at(workspace.final(live) / "big.bin") and (workspace.final(live) / "run.sh").is_file()
    assert workspace.events == ["cleaned", "cloned", "prepared", "renamed", "sealed"]
    assert in_flight(workspace.layout.mount, "ctx") == []

    def fail(temporary: Path) -> None:
        raise Interrupted("prepare")

    other = LiveTree(uuid7())
    with pytest.raises(Interrupted):
        await workspace.context().clone(source, other, prepare=fail)
    assert nothing_at(workspace.final(other)) and in_flight(workspace.layout.mount, "ctx") == []


async def test_new_tree_is_an_empty_tree_of_the_agent_adopted_into_the_view(workspace: Workspace) -> None:
    live = LiveTree(uuid7())

    assert await workspace.context().new_tree(live)

    info = os.lstat(workspace.final(live))
    assert stat.S_ISDIR(info.st_mode) and os.listdir(workspace.final(live)) == []
    assert (info.st_uid, info.st_gid) == AGENT
    assert stat.S_IMODE(info.st_mode) == 0o755 & ~_umask()
    assert workspace.events == ["cleaned", "renamed", "sealed"]
    assert in_flight(workspace.layout.mount, "ctx") == []
    assert not await workspace.context().new_tree(live), "there already: nothing to do"


@pytest.mark.parametrize("how", INTERRUPTIONS)
async def test_an_interrupted_new_tree_leaves_nothing_and_a_rerun_completes(workspace: Workspace, how: str) -> None:
    live = LiveTree(uuid7())

    async def make(ctx: ExecutionContext) -> bool:
        return await ctx.new_tree(live)

    await interrupt(workspace, how, make)

    assert in_flight(workspace.layout.mount, "ctx") == [] and os.listdir(workspace.live) == []
    assert await workspace.context().new_tree(live)
    assert os.listdir(workspace.final(live)) == []


def test_every_context_method_is_documented() -> None:
    text = DOCS.read_text()
    methods = [name for name in vars(ExecutionContext) if callable(getattr(ExecutionContext, name))]
    public = [name for name in methods if not name.startswith("_")]
    assert {"clone", "new_tree", "has_tree", "quiesced", "checkpoint", "reached"} <= set(public)
    for name in public:
        assert re.search(rf"`(await )?ctx\.{name}\(", text), f"ctx.{name}() is missing from {DOCS.name}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_an_op_cancelled_while_it_takes_the_workspace_lock_leaves_it_free(tmp_path: Path) -> None:
    """The lock is taken in a thread: a cancellation landing meanwhile (a task timeout, a shutdown) waits for
    that thread and lets go of the lock, so the workspace's next op is not locked out."""
    VolumeLayout(tmp_path).ensure_area()
    layout = WorkspaceLayout(tmp_path, "locked")

    async def hold() -> None:
        async with workspace_lock(layout):
            await asyncio.sleep(60)

    for ticks in range(4):  # cancelled at successive points: taking the lock, or holding it
        holding = asyncio.create_task(hold())
        for _ in range(ticks):
            await asyncio.sleep(0)
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        fd = try_workspace_lock(layout)
        assert fd is not None, f"the lock stayed held after a cancellation {ticks} ticks in"
        os.close(fd)
