"""``wvs up`` starts everything, serves a create+snapshot flow driven by wvsctl and ``wvs agent`` and the
whole smoke test (scripts/smoke-test.sh), and leaves no mount and no PostgreSQL behind when stopped, even
after a kill -9 of an earlier one; one ``wvs up`` at a time holds a data directory."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import free_port
from wvs_core.cli.discovery import UpState, default_api_url, running_up
from wvs_juicefs.binary import find_juicefs
from wvs_juicefs.volume import fuse_unavailable_reason, is_mounted

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
API_LINE = r"API:\s+(http://\S+)"
MOUNT_LINE = r"mount:\s+(\S+)"


class Up:
    """A ``wvs up`` process (the leader of a process group of its own) and the file its stderr goes to."""

    def __init__(self, data_dir: Path, log: Path, *options: str) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = free_port()
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [str(BIN / "wvs"), "up", "--port", str(self.port), "--data-dir", str(data_dir), *options],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    def wait_for(self, pattern: str, timeout: float = 90) -> str:
        """The first group of the first line of output matching ``pattern``; fails if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.process.poll() is not None
            if match := re.search(pattern, self.log.read_text(), re.MULTILINE):
                return match.group(1)
            if exited:
                break
            time.sleep(0.1)
        raise AssertionError(f"never saw {pattern!r}; output was:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> int:
        """SIGTERM, as an operator would; its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


StartUp = Callable[..., Up]


@pytest.fixture
def wvs_up(tmp_path: Path) -> Iterator[StartUp]:
    """Starts ``wvs up --data-dir DIR`` on a free port. After the test, pass or fail, it kills every one
    still running, then stops whatever PostgreSQL and JuiceFS they left under their data directories."""
    if (reason := fuse_unavailable_reason()) is not None and not os.environ.get("CI"):
        pytest.skip(f"JuiceFS needs FUSE: {reason}")
    started: list[Up] = []

    def start(data_dir: Path, *options: str) -> Up:
        started.append(Up(data_dir, tmp_path / f"up-{len(started)}.log", *options))
        return started[-1]

    yield start
    for up in started:
        if up.process.poll() is None:
            os.killpg(up.process.pid, signal.SIGKILL)
            up.process.wait()
    for data_dir in {up.data_dir for up in started}:
        reap(data_dir)


@pytest.fixture(scope="module")
def shared_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One ``wvs up`` on JuiceFS for the tests below that only use it: a second ``wvs up`` refused beside it,
    the README walkthroughs, then the served flow, which stops it and finds nothing left (so it comes last in
    this file). Killed and reaped at the end of the module if a test left it running."""
    if (reason := fuse_unavailable_reason()) is not None and not os.environ.get("CI"):
        pytest.skip(f"JuiceFS needs FUSE: {reason}")
    work = tmp_path_factory.mktemp("shared-up")
    up = Up(work / "wvs-data", work / "up.log")
    yield up
    if up.process.poll() is None:
        os.killpg(up.process.pid, signal.SIGKILL)
        up.process.wait()
    reap(up.data_dir)


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL servers whose data directory is under ``data_dir``."""
    return processes_named("postgres", data_dir)


def juicefs_processes(data_dir: Path) -> list[psutil.Process]:
    """JuiceFS processes (mount daemons) working under ``data_dir``."""
    return processes_named("juicefs", data_dir)


def processes_named(name: str, data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == name and str(data_dir) in cmdline:
            found.append(process)
    return found


def juicefs_mounts(data_dir: Path) -> list[str]:
    """JuiceFS mount points under ``data_dir``, from /proc/mounts."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        return [
            fields[1]
            for fields in (line.split() for line in mounts)
            if fields[2].startswith("fuse.juicefs") and fields[1].startswith(f"{data_dir}/")
        ]


def leftovers(data_dir: Path, timeout: float = 10) -> list[str]:
    """What still runs or is mounted under ``data_dir`` after ``timeout`` seconds (servers stop
    asynchronously): PostgreSQL servers, JuiceFS processes and mounts."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            *(f"postgres {p.pid}" for p in postgres_processes(data_dir)),
            *(f"juicefs {p.pid}" for p in juicefs_processes(data_dir)),
            *(f"mount {m}" for m in juicefs_mounts(data_dir)),
        ]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def reap(data_dir: Path) -> None:
    """Stop what a test left under ``data_dir``: PostgreSQL (fast shutdown), JuiceFS mounts and daemons."""
    for mount in juicefs_mounts(data_dir):
        subprocess.run([find_juicefs(None), "umount", "--force", mount], capture_output=True)
    for process in [*postgres_processes(data_dir), *juicefs_processes(data_dir)]:
        process.send_signal(signal.SIGINT)
    _gone, alive = psutil.wait_procs([*postgres_processes(data_dir), *juicefs_processes(data_dir)], timeout=10)
    for process in alive:
        process.kill()


def wvsctl(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "wvsctl"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WVS_API_URL": api_url},
    )


def create_workspace(api_url: str, wsid: str) -> None:
    created = wvsctl(api_url, "workspace", "create", wsid, "--owner", "me", "--wait", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "SUCCEEDED"


def test_after_a_kill_9_the_next_wvs_up_starts_and_stops_leaving_nothing_behind(
    wvs_up: StartUp, tmp_path: Path
) -> None:
    data_dir = tmp_path / "wvs-data"
    killed = wvs_up(data_dir)
    api_url = killed.wait_for(API_LINE)
    mount = Path(killed.wait_for(MOUNT_LINE))
    create_workspace(api_url, "survivor")
    (mount / "survivor" / "current" / "kept.txt").write_text("written before the crash\n")

    os.killpg(killed.process.pid, signal.SIGKILL)  # the whole process group
    killed.process.wait(30)
    # PostgreSQL and the JuiceFS mount daemon run in sessions of their own: the kill leaves both behind.
    assert postgres_processes(data_dir) and juicefs_mounts(data_dir) == [str(mount)]

    restarted = wvs_up(data_dir)
    api_url = restarted.wait_for(API_LINE)
    assert httpx.get(f"{api_url}/readyz").json() == {"status": "ok", "database": "ok"}
    assert is_mounted(mount) and juicefs_mounts(data_dir) == [str(mount)]  # remounted, not mounted twice
    assert (mount / "survivor" / "current" / "kept.txt").read_text() == "written before the crash\n"
    workspace = json.loads(wvsctl(api_url, "workspace", "get", "survivor", "--json").stdout)
    assert workspace["state"] == "ACTIVE"

    assert restarted.stop() == 0
    assert leftovers(data_dir) == []


def test_wvs_up_uses_plain_directories_when_the_config_asks_for_localfs(wvs_up: StartUp, tmp_path: Path) -> None:
    config = tmp_path / "wvs.toml"
    config.write_text('[plugins]\nstorage = "localfs"\n')
    data_dir = tmp_path / "plain"
    up = wvs_up(data_dir, "--config", str(config))
    api_url = up.wait_for(API_LINE)
    mount = Path(up.wait_for(MOUNT_LINE))
    assert mount == data_dir / "workspaces" and juicefs_mounts(data_dir) == []
    assert "warning" not in up.log.read_text(), "asked for, not fallen back to"
    create_workspace(api_url, "plain")
    assert (mount / "plain" / "current").is_symlink()
    assert up.stop() == 0
    assert leftovers(data_dir) == []


def test_wvsctl_and_fsck_find_a_running_wvs_up_by_its_state_file(
    wvs_up: StartUp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "wvs.toml"
    config.write_text('[plugins]\nstorage = "localfs"\n')
    data_dir = tmp_path / "found"
    up = wvs_up(data_dir, "--config", str(config))
    api_url = up.wait_for(API_LINE)
    assert up.port != 8080 and up.wait_for(r"state:\s+(\S+)") == str(data_dir / "state.json")
    state = json.loads((data_dir / "state.json").read_text())
    assert state == {
        "api_url": api_url,
        "dsn": up.wait_for(r"database:\s+(\S+)"),
        "mount_path": str(data_dir / "workspaces"),
        "storage": "localfs",
        "pid": up.process.pid,
        "data_dir": str(data_dir),
    }
    assert state["dsn"].startswith("postgresql+asyncpg://")

    settings = {"WVS_API_URL", "WVS_CONFIG", "WVS_DB_DSN", "EXECUTOR_MOUNT_PATH"}
    env = {key: value for key, value in os.environ.items() if key not in settings} | {"WVS_DATA_DIR": str(data_dir)}

    def plain(*args: str) -> subprocess.CompletedProcess[str]:  # no URL, no DSN, no mount path given
        return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, env=env)

    created = plain("wvsctl", "workspace", "create", "found", "--owner", "me", "--wait", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "SUCCEEDED"
    assert "found" in plain("wvsctl", "workspace", "list").stdout

    fsck = plain("wvs", "fsck")
    assert fsck.returncode == 0, fsck.stderr
    assert fsck.stderr.strip() == (
        f"checking the `wvs up` on {data_dir} (pid {up.process.pid}): database {state['dsn']}, "
        f"mount {data_dir / 'workspaces'} (storage localfs)"
    )
    assert fsck.stdout.strip().endswith("1 workspace(s) checked: clean")

    assert up.stop() == 0
    assert not (data_dir / "state.json").exists(), "a clean stop removes the state file"
    monkeypatch.setenv("WVS_DATA_DIR", str(data_dir))
    assert default_api_url() == "http://localhost:8080"
    no_up = plain("wvs", "fsck")
    assert no_up.returncode == 2 and f"no `wvs up` runs on {data_dir}" in no_up.stderr
    assert leftovers(data_dir) == []


def test_a_state_file_whose_wvs_up_is_gone_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    UpState("http://127.0.0.1:9", "postgresql://x/y", "/ws", "juicefs", dead.pid, str(tmp_path)).write()
    monkeypatch.setenv("WVS_DATA_DIR", str(tmp_path))
    assert running_up() is None and default_api_url() == "http://localhost:8080"
    UpState("http://127.0.0.1:9", "postgresql://x/y", "/ws", "juicefs", os.getpid(), str(tmp_path)).write()
    assert default_api_url() == "http://127.0.0.1:9"
    (tmp_path / "state.json").write_text("{not json")
    assert running_up() is None


def readme_block(after: str) -> str:
    """The first ```sh block of the README after the line that holds ``after``."""
    text = (ROOT / "README.md").read_text()
    start = text.index("```sh\n", text.index(after)) + len("```sh\n")
    return text[start : text.index("```", start)]


def test_a_volume_that_cannot_mount_is_one_error_line_and_leaves_nothing(wvs_up: StartUp, tmp_path: Path) -> None:
    data_dir = tmp_path / "blocked"
    data_dir.mkdir()
    (data_dir / "juicefs").write_text("a file where the volume goes")
    up = wvs_up(data_dir)
    assert up.process.wait(120) == 2
    output = up.log.read_text()
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("Error: plugins.storage: the juicefs volume in ")
    assert leftovers(data_dir) == [] and not (data_dir / "state.json").exists()


def test_a_second_wvs_up_on_the_same_data_dir_leaves_the_first_alone(shared_up: Up, tmp_path: Path) -> None:
    first, data_dir = shared_up, shared_up.data_dir
    api_url = first.wait_for(API_LINE)
    mount = Path(first.wait_for(MOUNT_LINE))

    second = Up(data_dir, tmp_path / "second.log")  # not wvs_up's: its clean-up would reap the first's data dir
    try:
        assert second.process.wait(60) == 2
    finally:
        if second.process.poll() is None:
            os.killpg(second.process.pid, signal.SIGKILL)
            second.process.wait()
    assert second.log.read_text().strip().splitlines() == [
        f"Error: another `wvs up` (pid {first.process.pid}) is using {data_dir}; "
        "stop it first or choose another --data-dir"
    ]

    assert httpx.get(f"{api_url}/readyz").json() == {"status": "ok", "database": "ok"}
    assert is_mounted(mount)
    create_workspace(api_url, "still-served")  # the database, the executor and the mount all still work
    assert (mount / "still-served" / "current").is_dir()


def test_the_readme_walkthroughs_work_pasted_in_order(shared_up: Up, tmp_path: Path) -> None:
    data_dir = shared_up.data_dir
    api_url = shared_up.wait_for(API_LINE)
    script = readme_block("## Five minutes") + readme_block("The same flow over HTTP")
    env = {key: value for key, value in os.environ.items() if key not in {"WVS_CONFIG", "WVS_API_URL"}}
    env |= {"PATH": f"{BIN}:{os.environ['PATH']}", "WVS_DATA_DIR": str(data_dir)}  # wvsctl finds `wvs up`
    env["WVS_API_URL"] = api_url  # for curl, as the block says
    log = tmp_path / "readme.out"  # a file, not a pipe: the background agents keep their stdout open
    with open(log, "wb") as out:
        shell = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its background agents are killed with it
        )
    try:
        shell.wait(300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
    output = log.read_text()
    assert shell.returncode == 0, output[-4000:]
    lines = output.splitlines()
    assert "hello" in lines, "the rollback brought the first version back"
    assert "auto=before-rollback" in output
    assert '"status":"SUCCEEDED"' in output.replace(" ", ""), output[-3000:]
    demo2 = httpx.get(f"{api_url}/v1/workspaces/demo2/snapshots").json()["items"]
    assert [snapshot["message"] for snapshot in demo2] == ["m"]


def test_wvs_up_serves_and_cleans_up(shared_up: Up) -> None:
    up, data_dir = shared_up, shared_up.data_dir
    agent = None
    try:
        api_url = up.wait_for(API_LINE)
        assert api_url == f"http://127.0.0.1:{up.port}"
        mount = Path(up.wait_for(MOUNT_LINE))
        assert mount == data_dir / "juicefs" / "mnt" and is_mounted(mount)
        assert up.wait_for(r"agent view:\s+(\S+)") == f"{mount}/<wsid>", "it says what to mount into a sandbox"
        area = os.stat(mount / ".wvs")
        assert (area.st_uid, area.st_mode & 0o777) == (0, 0o700), "WVS's area is root's alone"

        create_workspace(api_url, "served")
        workspace = json.loads(wvsctl(api_url, "workspace", "get", "served", "--json").stdout)
        assert workspace["state"] == "ACTIVE" and workspace["root_path"] == str(mount / "served")
        (mount / "served" / "current" / "hello.txt").write_text("hello from the agent\n")

        agent = subprocess.Popen([str(BIN / "wvs"), "agent", str(mount / "served")], stderr=subprocess.DEVNULL)
        snap = wvsctl(api_url, "snapshot", "create", "served", "-m", "first", "--wait", "--json")
        assert snap.returncode == 0, snap.stderr
        snapshot_id = json.loads(snap.stdout)["params"]["snapshot_id"]
        assert (
            mount / ".wvs" / "snapshots" / "served" / snapshot_id / "hello.txt"
        ).read_text() == "hello from the agent\n"
        listed = wvsctl(api_url, "snapshot", "list", "served")
        assert snapshot_id in listed.stdout and "first" in listed.stdout

        smoke = subprocess.run(
            ["bash", str(ROOT / "scripts" / "smoke-test.sh")],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "WVS_API_URL": api_url, "WVS_BIN": str(BIN)},
        )
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert smoke.stdout.strip().splitlines()[-1] == "=== ALL SMOKE TESTS PASSED ==="
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
    assert up.stop() == 0
    assert leftovers(data_dir) == []
