"""The control.json handshake: a snapshot waits for FROZEN, fails closed without it, always resumes, and
an agent's answer never overwrites a request the agent has not seen."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_config
from tests.helpers import create_workspace, in_flight, key, snapshots_dir, wait_task
from wvs_client.responder import ControlState, answer_control, control_lock, encode_control, read_control
from wvs_controlfile import ControlFileQuiesce, QuiesceResponder
from wvs_controlfile.protocol import answer_wait
from wvs_core.agentview import AgentView, WorkspaceTampered, temporary_name
from wvs_core.config import load_config
from wvs_core.errors import ConfigError
from wvs_core.fsutil import atomic_write_bytes
from wvs_core.layout import CONTROL_FILE, CONTROL_LOCK, META, VolumeLayout, WorkspaceLayout
from wvs_core.quiesce import QuiesceTimeout


async def test_snapshot_waits_for_the_agent_to_freeze(wvs) -> None:
    await create_workspace(wvs, "slow-agent")
    root = wvs.mount_path / "slow-agent"
    (root / "current" / "data.txt").write_text("v1")
    freeze_requested = threading.Event()
    release = threading.Event()
    resumed = threading.Event()

    def on_freeze() -> None:
        freeze_requested.set()
        assert release.wait(10), "the test never released the freeze"

    responder = QuiesceResponder(root, on_freeze=on_freeze, on_resume=resumed.set)
    with responder.running_in_thread():
        accepted = (await wvs.post("/v1/workspaces/slow-agent/snapshots", json={}, headers=key())).json()
        assert await asyncio.to_thread(freeze_requested.wait, 10)
        await asyncio.sleep(0.5)  # the executor is waiting for us: nothing may be cloned yet
        task = (await wvs.get(f"/v1/tasks/{accepted['task_id']}")).json()
        assert task["status"] == "RUNNING"
        assert not list(snapshots_dir(wvs.mount_path, "slow-agent").iterdir())
        assert in_flight(wvs.mount_path, "slow-agent") == []
        release.set()
        task = await wait_task(wvs, accepted["task_id"])
        assert task["status"] == "SUCCEEDED"
        assert await asyncio.to_thread(resumed.wait, 5)
        deadline = time.monotonic() + 5
        while json.loads((root / ".wvs" / "control.json").read_text())["state"] != "RUNNING":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    assert (snapshots_dir(wvs.mount_path, "slow-agent") / accepted["snapshot_id"] / "data.txt").read_text() == "v1"


async def test_no_answer_fails_closed_and_resumes(database, mount, start_service) -> None:
    config = make_config(database, mount, executor={"quiesce_timeout": "1s"}, worker={"retry_base": "30s"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "silent-agent")
        root = mount / "silent-agent"
        (root / "current" / "data.txt").write_text("v1")
        accepted = (await client.post("/v1/workspaces/silent-agent/snapshots", json={}, headers=key())).json()
        task = await wait_task(client, accepted["task_id"], until={"FAILED", "DEAD"})
    assert task["status"] == "FAILED"
    assert task["error"]["reason"] == "QUIESCE_TIMEOUT"
    assert task["error"]["code"] == "WVS_EXECUTOR_ERROR"
    assert list(snapshots_dir(mount, "silent-agent").iterdir()) == [], "fail-closed: nothing may be cloned"
    assert in_flight(mount, "silent-agent") == []
    control = json.loads((root / ".wvs" / "control.json").read_text())
    assert control["state"] == "REQUEST_RESUME"
    assert control["task_id"] == accepted["task_id"]


def write_control(control_file: Path, state: ControlState, task_id: str) -> None:
    """Write a request as the executor does: under control.lock, atomically."""
    with control_lock(control_file):
        atomic_write_bytes(control_file, encode_control(state, task_id))


async def test_a_resume_that_lands_while_the_agent_freezes_is_not_lost(mount) -> None:
    control_file = mount / "racing" / ".wvs" / "control.json"
    control_file.parent.mkdir(parents=True)
    write_control(control_file, ControlState.REQUEST_FREEZE, "t1")
    calls = []

    def on_freeze() -> None:  # the executor gives up on the freeze while the agent is still freezing
        calls.append("freeze")
        write_control(control_file, ControlState.REQUEST_RESUME, "t1")

    responder = QuiesceResponder(
        control_file.parent.parent, on_freeze=on_freeze, on_resume=lambda: calls.append("resume")
    )
    assert await responder.step() is None, "FROZEN must not overwrite the newer REQUEST_RESUME"
    assert read_control(control_file)["state"] == "REQUEST_RESUME"
    assert await responder.step() == ControlState.RUNNING
    assert calls == ["freeze", "resume"] and not responder.frozen


async def test_a_freeze_right_after_a_resume_is_answered_not_overwritten(mount) -> None:
    control_file = mount / "racing" / ".wvs" / "control.json"
    control_file.parent.mkdir(parents=True)
    write_control(control_file, ControlState.REQUEST_FREEZE, "t1")
    calls = []
    responder = QuiesceResponder(
        control_file.parent.parent,
        on_freeze=lambda: calls.append("freeze"),
        # the next op freezes again before the agent has confirmed the resume
        on_resume=lambda: write_control(control_file, ControlState.REQUEST_FREEZE, "t2"),
    )
    assert await responder.step() == ControlState.FROZEN
    write_control(control_file, ControlState.REQUEST_RESUME, "t1")
    assert await responder.step() is None, "RUNNING must not overwrite the newer REQUEST_FREEZE"
    assert await responder.step() == ControlState.FROZEN
    assert read_control(control_file) | {"timestamp": None} == {"state": "FROZEN", "task_id": "t2", "timestamp": None}
    assert calls == ["freeze", "freeze"]


async def open_handshake(mount: Path, wsid: str) -> tuple[AgentView, Path]:
    """A workspace's agent view with the handshake prepared (control.json RUNNING); the view and the file."""
    VolumeLayout(mount).ensure_area()
    view = AgentView.open(WorkspaceLayout(mount, wsid), create=True)
    await ControlFileQuiesce({}).prepare(view, "init")
    return view, mount / wsid / ".wvs" / "control.json"


async def test_answers_are_seen_at_once_however_long_the_longest_poll(mount) -> None:
    """With polls of up to 2 s on both sides, an agent that answers at once gets the freeze confirmed and
    the resume answered in a fraction of that: each side reads again 1 ms after a change, then backs off."""
    view, control_file = await open_handshake(mount, "prompt")
    executor = ControlFileQuiesce({"poll_interval": 2.0})
    responder = QuiesceResponder(control_file.parent.parent, poll_interval=2.0)
    with view, responder.running_in_thread():
        started = time.monotonic()
        await executor.freeze(view, "t1", timeout=10)
        frozen_after = time.monotonic() - started
        await executor.resume(view, "t1")
        resumed = time.monotonic()
        while read_control(control_file)["state"] != ControlState.RUNNING:
            assert time.monotonic() - resumed < 10, "the resume was never answered"
            await asyncio.sleep(0.005)
        resumed_after = time.monotonic() - resumed
    assert frozen_after < 1.0 and resumed_after < 1.0, (frozen_after, resumed_after)


def reads_after_request(longest: float, until: float) -> list[float]:
    """When the executor reads control.json, in seconds after its request, with reads that take no time."""
    reads, now = [], 0.0
    while now < until:
        now += answer_wait(now, longest)
        reads.append(now)
    return reads


@pytest.mark.parametrize("longest", [0.02, 0.5])
def test_an_answer_is_read_at_most_a_quarter_of_the_wait_late(longest: float) -> None:
    """Whenever the agent's answer lands in the first 2 s of a freeze, the executor's next read comes at most
    1 ms or a quarter of the time waited after it, and never more than the longest poll later; waits that
    doubled saw an answer landing at 1.1 ms at 3 ms, one landing just after the 15 ms read at 31 ms."""
    reads = reads_after_request(longest, 2.0)
    for answered in (n / 10_000 for n in range(1, 20_000)):  # every 0.1 ms up to 2 s
        seen = next(read for read in reads if read >= answered)
        assert seen - answered <= min(max(0.001, answered * 0.25), longest) + 1e-9, (answered, seen)


@pytest.mark.parametrize("longest", [0.02, 0.5])
def test_an_agent_that_does_not_answer_is_read_every_longest_poll_after_four_of_them(longest: float) -> None:
    """A silent agent costs a few reads more than doubling waits did (17 in the first 80 ms, against 7), and
    from four longest polls on, one read per longest poll."""
    reads = reads_after_request(longest, 14 * longest)
    early = [read for read in reads if read < 4 * longest]
    assert len(early) <= 5 + math.log(longest / 0.001, 1.25)  # 1 ms waits until 4 ms, then 25 % longer each
    later = [b - a for a, b in itertools.pairwise(reads) if a >= 4 * longest]
    assert len(later) >= 9 and all(math.isclose(gap, longest) for gap in later)


@pytest.mark.parametrize("timeout", [0.9, 1.1, 1.3, 1.5])
async def test_a_freeze_with_long_polls_gives_up_at_its_deadline_not_a_wait_later(mount, timeout: float) -> None:
    """With a longest poll far above the timeout, the waits grow to a quarter of the time waited — up to ~0.4 s
    here — but the last one is cut at the deadline: the freeze fails closed within a read of it."""
    view, _control_file = await open_handshake(mount, f"deadline-{int(timeout * 10)}")
    executor = ControlFileQuiesce({"poll_interval": "10s"})
    with view:
        started = time.monotonic()
        with pytest.raises(QuiesceTimeout):
            await executor.freeze(view, "t1", timeout=timeout)
        assert timeout <= time.monotonic() - started < timeout + 0.1


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"poll_interval": 0}, "must be positive"),
        ({"poll_interval": "0.5ms"}, "from 1ms to 365 days"),
        ({"poll_interval": -0.5}, "negative"),
        ({"poll_interval": float("nan")}, "from 1ms to 365 days"),
        ({"poll_interval": "soon"}, "not a duration"),
        ({"poll_intervall": 0.02}, "poll_intervall"),
    ],
)
def test_a_wrong_setting_is_a_config_error_naming_it(settings: dict[str, object], named: str) -> None:
    """A poll interval under 1 ms would read control.json in a loop until the freeze times out, one that is not
    a number would fail only at the first snapshot, and a misspelt key would be silently ignored."""
    with pytest.raises(ConfigError, match=r"plugins\.settings\.control-json") as caught:
        ControlFileQuiesce(settings)
    assert named in str(caught.value)


def test_the_example_configs_control_json_table_is_taken() -> None:
    example = load_config(Path(__file__).resolve().parent.parent / "contrib" / "wvs.example.toml", env={})
    assert ControlFileQuiesce(example.plugins.settings_for("control-json")).poll_interval == 0.02


async def test_a_late_answer_is_taken_and_none_fails_closed_at_the_timeout(mount) -> None:
    """Backing off to the longest poll still sees an answer that comes late; with no answer, the freeze gives
    up at its timeout — not before — with QuiesceTimeout."""
    view, control_file = await open_handshake(mount, "late")
    executor = ControlFileQuiesce({"poll_interval": 0.05})
    with view:

        def answer_late() -> None:
            time.sleep(0.4)
            assert answer_control(control_file, read_control(control_file), ControlState.FROZEN)

        answering = asyncio.create_task(asyncio.to_thread(answer_late))
        await executor.freeze(view, "t1", timeout=5)
        await answering

        started = time.monotonic()
        with pytest.raises(QuiesceTimeout):
            await executor.freeze(view, "t2", timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 2.0
        assert read_control(control_file)["state"] == ControlState.REQUEST_FREEZE


@pytest.mark.parametrize("planted", ["control.json", "control.lock"])
def test_a_fifo_another_process_plants_in_the_handshake_never_hangs_the_responder(tmp_path: Path, planted: str) -> None:
    """Any process of the sandbox may put a FIFO where the responder opens control.json or control.lock: it takes
    it for no answer (the freeze fails closed) and still stops when asked — opening a FIFO would wait forever."""
    meta = tmp_path / ".wvs"
    meta.mkdir()
    request = encode_control(ControlState.REQUEST_FREEZE, "t1")
    (meta / "control.json").write_bytes(request)
    (meta / planted).unlink(missing_ok=True)
    os.mkfifo(meta / planted)
    responder = QuiesceResponder(tmp_path, poll_interval=0.01)

    def run_briefly() -> None:
        with responder.running_in_thread():
            time.sleep(0.2)

    runner = threading.Thread(target=run_briefly, daemon=True)
    runner.start()
    runner.join(5)
    assert not runner.is_alive(), "the responder hangs on the FIFO and cannot be stopped"
    unanswered = None if planted == "control.json" else json.loads(request)
    assert read_control(meta / "control.json") == unanswered, "no answer without the handshake's files"


def test_a_link_another_process_plants_as_control_lock_makes_no_file_where_it_points(tmp_path: Path) -> None:
    """The responder may run with more rights than another process of the sandbox: a dangling link at
    control.lock must not make it create a file where the link points (an ``/etc/nologin``, say)."""
    meta = tmp_path / "view" / ".wvs"
    meta.mkdir(parents=True)
    (meta / "control.json").write_bytes(encode_control(ControlState.REQUEST_FREEZE, "t1"))
    target = tmp_path / "elsewhere"
    (meta / "control.lock").symlink_to(target)
    responder = QuiesceResponder(tmp_path / "view", poll_interval=0.01)
    with responder.running_in_thread():
        time.sleep(0.2)
    assert not target.exists(), "the responder created a file through the link"
    assert read_control(meta / "control.json")["state"] == "REQUEST_FREEZE", "no answer without the lock"


def test_a_step_that_keeps_failing_is_logged_once_not_once_per_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process of the sandbox can break the handshake for good (a FIFO at control.lock): the responder
    keeps trying, but one traceback per poll (50 a second) would fill the agent's disk."""
    meta = tmp_path / ".wvs"
    meta.mkdir()
    (meta / "control.json").write_bytes(encode_control(ControlState.REQUEST_FREEZE, "t1"))
    os.mkfifo(meta / "control.lock")
    responder = QuiesceResponder(tmp_path, poll_interval=0.005)
    with caplog.at_level("ERROR", logger="wvs_client.responder"), responder.running_in_thread():
        time.sleep(0.3)
    failures = [record for record in caplog.records if "step failed" in record.getMessage()]
    assert len(failures) == 1, len(failures)
    assert "control.lock is not a regular file" in str(failures[0].exc_info[1])


def plain_view(tmp_path: Path, wsid: str) -> AgentView:
    """An agent view on a plain directory, its ``.wvs`` made."""
    VolumeLayout(tmp_path).ensure_area()
    layout = WorkspaceLayout(tmp_path, wsid)
    layout.ensure_area_dirs()
    view = AgentView.open(layout, create=True)
    view.directory(META, create=True)
    return view


def agent_makes_it_first(monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[int], None]) -> None:
    """Make the agent win the race for ``name``: right before WVS creates it exclusively, ``make(parent_fd)``
    creates it (the window between WVS's look and its ``O_EXCL`` open, hit every time)."""
    real_open = os.open

    def racing_open(path: object, flags: int, *args: object, **kwargs: Any) -> int:
        if path == name and flags & os.O_EXCL:
            make(kwargs["dir_fd"])
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", racing_open)


def test_a_lock_file_the_agent_creates_at_the_same_moment_is_opened_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent takes control.lock too, creating it when missing: if it does so between WVS's look and WVS's own
    exclusive create, WVS opens the agent's file (an EEXIST escaping here failed the task as an executor error)."""
    with plain_view(tmp_path, "lock-race") as view:
        agent_makes_it_first(
            monkeypatch,
            CONTROL_LOCK,
            lambda parent: os.close(os.open(CONTROL_LOCK, os.O_CREAT | os.O_RDONLY, 0o644, dir_fd=parent)),
        )
        fd = view.open_lock_file(META, CONTROL_LOCK)
        assert fd is not None
        os.close(fd)


def test_a_fifo_the_agent_swaps_in_at_wvss_temporary_name_is_tampering_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WVS writes control.json under a fixed temporary name in the agent's ``.wvs``; an agent that recreates that
    name (a FIFO) between WVS's unlink and its exclusive create tampers with the workspace — never a stray
    EEXIST, and nothing is written through what it made."""
    temporary = temporary_name(CONTROL_FILE)
    with plain_view(tmp_path, "tmp-race") as view:
        agent_makes_it_first(monkeypatch, temporary, lambda parent: os.mkfifo(temporary, dir_fd=parent))
        with pytest.raises(WorkspaceTampered, match=r"\.wvs/\.control\.json\.wvs-tmp"):
            view.replace_file(META, CONTROL_FILE, b"{}")
    assert not (tmp_path / "tmp-race" / META / CONTROL_FILE).exists()


@pytest.mark.parametrize("swap", ["removed", "made a directory"])
def test_wvss_temporary_file_swapped_before_its_rename_is_tampering_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """Between WVS's write of its temporary file and the rename over control.json (an fsync apart), the agent
    removes it or puts a directory in its place: tampering, never a stray FileNotFoundError or
    NotADirectoryError, and control.json keeps what it held."""
    temporary = temporary_name(CONTROL_FILE)
    real_rename = os.rename

    def agent_first(source: str, target: str, **kwargs: Any) -> None:
        parent = kwargs["src_dir_fd"]
        os.unlink(temporary, dir_fd=parent)
        if swap == "made a directory":
            os.mkdir(temporary, dir_fd=parent)
        real_rename(source, target, **kwargs)

    with plain_view(tmp_path, f"rename-race-{swap[0]}") as view:
        view.replace_file(META, CONTROL_FILE, b'{"before": 1}')
        monkeypatch.setattr(os, "rename", agent_first)
        with pytest.raises(WorkspaceTampered, match=r"\.wvs/control\.json"):
            view.replace_file(META, CONTROL_FILE, b"{}")
    assert (tmp_path / f"rename-race-{swap[0]}" / META / CONTROL_FILE).read_bytes() == b'{"before": 1}'
