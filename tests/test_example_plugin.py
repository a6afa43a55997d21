"""The example third-party plugin package, ``contrib/wvs-example-plugin``, as a user runs it: installed with pip
and found through its entry point by ``wvs api``, ``wvs worker`` and ``wvs executor`` processes, on a real
PostgreSQL and a real JuiceFS mount. Its op is listed by ``GET /v1/ops`` and runs through ``POST
/v1/workspaces/{wsid}/tasks`` and ``wvsctl task submit``; drop protection and ``wvs fsck`` follow its
declarations; its notifier receives every event in order; its storage backend carries a snapshot and a rollback.

The package goes into a directory of its own (``pip install --target``), never into this virtualenv: only the
processes started here have it on their PYTHONPATH, so the rest of the suite loads the built-in plugins only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.conftest import fresh_database
from tests.helpers import free_port, key, populate_tree, snapshots_dir, tree_signature
from tests.test_planes_as_processes import wait_ready, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.ids import is_uuid, uuid7
from wvs_core.layout import WorkspaceLayout, area_names
from wvs_juicefs.volume import JuiceFSVolume

PACKAGE = Path(__file__).resolve().parent.parent / "contrib" / "wvs-example-plugin"
BIN = Path(sys.executable).parent
# Offline, as a user would install it: no dependencies (wvs is here), this virtualenv's setuptools to build.
PIP_INSTALL = (sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet")
PLANES = ("executor", "worker", "api")  # in start order: the worker calls the executor, clients call the api
OP = "checkout_clean"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install`` of the package into a directory of its own, offline: the build backend is this
    virtualenv's setuptools, and ``wvs`` — its one dependency — is installed already."""
    work = tmp_path_factory.mktemp("example-plugin")
    source, site = work / "source", work / "site"
    # A copy: the build writes build/ and *.egg-info beside the sources, and other checkouts build too.
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    installed = subprocess.run(
        [*PIP_INSTALL, "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return site


def config_text(dsn: str, mount: Path, ports: dict[str, int], events_file: Path, storage: str, notifiers: str) -> str:
    """One config file for every plane (``notifiers``: a TOML list)."""
    return f"""
        log_level = "info"
        [database]
        dsn = "{dsn}"
        pool_size = 4
        [api]
        listen_addr = "127.0.0.1:{ports["api"]}"
        metrics_addr = "127.0.0.1:{ports["api_metrics"]}"
        [worker]
        executor_addrs = ["127.0.0.1:{ports["grpc"]}"]
        metrics_addr = "127.0.0.1:{ports["worker_metrics"]}"
        poll_interval = "200ms"
        retry_base = "200ms"
        [executor]
        grpc_addr = "127.0.0.1:{ports["grpc"]}"
        metrics_addr = "127.0.0.1:{ports["executor_metrics"]}"
        mount_path = "{mount}"
        quiesce_timeout = "5s"
        [plugins]
        storage = "{storage}"
        notifiers = {notifiers}
        [plugins.settings.jsonl]
        path = "{events_file}"
        """


class Deployment:
    """WVS as ``wvs executor``, ``wvs worker`` and ``wvs api`` processes sharing one config file, with the
    example package on their PYTHONPATH (and nowhere else)."""

    def __init__(self, site: Path, dsn: str, mount: Path, workdir: Path, storage: str = "juicefs") -> None:
        self.site, self.dsn, self.mount, self.workdir, self.storage = site, dsn, mount, workdir, storage
        self.ports = {
            name: free_port() for name in ("api", "api_metrics", "grpc", "worker_metrics", "executor_metrics")
        }
        self.url = f"http://127.0.0.1:{self.ports['api']}"
        self.events_file = workdir / "events.jsonl"
        self.config = self.write_config("wvs.toml", '["log", "jsonl"]')
        self.env = {**os.environ, "WVS_CONFIG": str(self.config), "PYTHONPATH": str(site)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def write_config(self, name: str, notifiers: str) -> Path:
        path = self.workdir / name
        path.write_text(config_text(self.dsn, self.mount, self.ports, self.events_file, self.storage, notifiers))
        return path

    def __enter__(self) -> Deployment:
        try:
            self.start(*PLANES)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        codes = {plane: self.stop(plane) for plane in list(self.processes)}
        assert set(codes.values()) <= {0}, f"every plane shuts down cleanly on SIGTERM: {codes}, {self.logs()}"

    def start(self, *planes: str) -> None:
        """Start ``planes``; each is ready when this returns."""
        for plane in planes:
            with open(self.workdir / f"{plane}.log", "ab") as log_file:
                self.processes[plane] = subprocess.Popen([str(BIN / "wvs"), plane], env=self.env, stderr=log_file)
            if plane == "executor":
                wait_listening(self.ports["grpc"])
            elif plane == "api":
                wait_ready(self.url)

    def stop(self, plane: str) -> int:
        """SIGTERM ``plane`` and wait for it; returns its exit code."""
        process = self.processes.pop(plane)
        process.send_signal(signal.SIGTERM)
        return process.wait(60)

    def wvs(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``wvs ARGS`` as an operator would on this deployment (with the package, unless ``env`` says)."""
        return subprocess.run(
            [str(BIN / "wvs"), *args], env=env or self.env, capture_output=True, text=True, timeout=120
        )

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in self.workdir.glob("*.log"))


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port} after {timeout}s"
            time.sleep(0.1)


def new_mount(volume: JuiceFSVolume) -> Path:
    mount = volume.mount_path / f"example-{uuid7()[-12:]}"
    mount.mkdir()
    return mount


@pytest.fixture(scope="module")
def deployment(
    example_site: Path, postgres: Any, juicefs_volume: JuiceFSVolume, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment on the JuiceFS backend for the module's tests (each uses workspaces of its own)."""
    workdir = tmp_path_factory.mktemp("example-deployment")
    with fresh_database(postgres) as dsn, Deployment(example_site, dsn, new_mount(juicefs_volume), workdir) as running:
        yield running


@pytest.fixture
def api(deployment: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        yield client


def create_workspace(client: httpx.Client, wsid: str) -> None:
    created = client.post("/v1/workspaces", json={"wsid": wsid, "owner": "tests"}, headers=key())
    assert created.status_code == 202, created.text
    assert wait_task(client, created.json()["init_task_id"])["status"] == "SUCCEEDED"


def take_snapshot(client: httpx.Client, mount: Path, wsid: str) -> str:
    with QuiesceResponder(mount / wsid).running_in_thread():
        accepted = client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())
        assert accepted.status_code == 202, accepted.text
        assert wait_task(client, accepted.json()["task_id"])["status"] == "SUCCEEDED"
    return str(accepted.json()["snapshot_id"])


def submit(client: httpx.Client, wsid: str, params: dict[str, Any], op: str = OP) -> httpx.Response:
    return client.post(f"/v1/workspaces/{wsid}/tasks", json={"op": op, "params": params}, headers=key())


def run_checkout_clean(client: httpx.Client, mount: Path, wsid: str, params: dict[str, Any]) -> dict[str, Any]:
    """Submit the op with the agent answering freezes; returns the finished task."""
    with QuiesceResponder(mount / wsid).running_in_thread():
        accepted = submit(client, wsid, params)
        assert accepted.status_code == 202, accepted.text
        return wait_task(client, accepted.json()["task_id"])


def write_work(current: Path) -> None:
    (current / "src").mkdir()
    (current / "src" / "main.py").write_text("print('kept')\n")
    (current / "build" / "out").mkdir(parents=True)
    (current / "build" / "out" / "main.o").write_bytes(b"\x7fELF")
    (current / ".env").write_text("TOKEN=secret\n")
    (current / "notes.txt").write_text("kept too\n")
    os.symlink("src", current / "lnk")


def workspace_with_snapshot(client: httpx.Client, mount: Path, wsid: str) -> str:
    """A new workspace whose current tree holds ``write_work``'s files, snapshotted; returns the snapshot's id."""
    create_workspace(client, wsid)
    write_work(mount / wsid / "current")
    return take_snapshot(client, mount, wsid)


def test_the_package_is_loaded_through_its_entry_point_only_where_installed(example_site: Path) -> None:
    def plugins(env: dict[str, str]) -> dict[str, dict[str, Any]]:
        listed = subprocess.run([str(BIN / "wvs"), "plugins", "--json"], env=env, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        return {row["name"]: row for row in json.loads(listed.stdout)}

    base = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"WVS_CONFIG": ""}
    example = plugins({**base, "PYTHONPATH": str(example_site)})["example"]
    assert example["module"] == "wvs_example"
    assert example["distribution"] == "wvs-example-plugin 0.1.0"
    assert example["file"] == str(example_site / "wvs_example" / "__init__.py")
    assert sorted(example["provides"]) == ["notifier:jsonl", "op:checkout_clean", "storage:copytree"]
    assert "example" not in plugins(base), "this virtualenv never gets the package"


def test_their_settings_are_checked_when_a_plane_starts(example_site: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        f"""
        [database]
        dsn = "postgresql+asyncpg://nobody@127.0.0.1:1/unreachable"  # never reached: the settings fail first
        [executor]
        mount_path = "{tmp_path}"
        [plugins]
        storage = "copytree"
        notifiers = ["jsonl"]
        [plugins.settings.jsonl]
        path = "events.jsonl"
        [plugins.settings.copytree]
        reflink = "sometimes"
        colour = "blue"
        """
    )
    env = {**os.environ, "WVS_CONFIG": str(config), "PYTHONPATH": str(example_site)}
    for plane, expected in (
        ("worker", "invalid plugins.settings.jsonl: path must be absolute, got 'events.jsonl'"),
        (
            "fsck",
            "plugins.settings.copytree: reflink must be one of auto, always, never, got 'sometimes'; "
            "unknown key(s) colour",
        ),
    ):
        refused = subprocess.run([str(BIN / "wvs"), plane], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and expected in refused.stderr, refused.stderr


def test_get_ops_lists_the_op_with_its_params_schema(api: httpx.Client) -> None:
    ops = {item["name"]: item for item in api.get("/v1/ops").json()["items"]}
    assert ops[OP]["description"].startswith("Make ``current`` a fresh clone of a snapshot without the listed paths")
    schema = ops[OP]["params_schema"]
    assert schema["required"] == ["snapshot_id", "remove"] and schema["additionalProperties"] is False
    assert schema["properties"]["remove"]["type"] == "array"
    assert schema["properties"]["remove"]["items"] == {"type": "string"}
    assert schema["properties"]["new_live_id"] == {"type": "string", "readOnly": True}
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"snapshot_id": uuid7(), "remove": ["build"]}, schema)


def test_checkout_clean_makes_current_a_clone_of_the_snapshot_without_the_paths(
    api: httpx.Client, deployment: Deployment
) -> None:
    wsid, mount = "clean-route", deployment.mount
    create_workspace(api, wsid)
    first_live = os.readlink(mount / wsid / "current")
    write_work(mount / wsid / "current")
    snapshot_id = take_snapshot(api, mount, wsid)
    (mount / wsid / "current" / "scratch.txt").write_text("written after the snapshot")

    for params, expected in (
        ({"snapshot_id": snapshot_id, "remove": ["../etc"]}, "remove[0] must be a normalized relative path"),
        ({"snapshot_id": snapshot_id, "remove": ["a//b"]}, "remove[0] must be a normalized relative path"),
        ({"snapshot_id": snapshot_id, "remove": ["/etc"]}, "remove[0] must be a normalized relative path"),
        ({"snapshot_id": snapshot_id, "remove": []}, "remove must list 1 to 256 paths"),
        ({"snapshot_id": snapshot_id, "remove": ["x"], "new_live_id": uuid7()}, "new_live_id is chosen by the server"),
    ):
        refused = submit(api, wsid, params)
        assert refused.status_code == 400, refused.text
        assert expected in refused.json()["error"]["message"]
    unknown = submit(api, wsid, {"snapshot_id": uuid7(), "remove": ["x"]})
    assert unknown.status_code == 404, "the op's references must exist"

    freezes: list[int] = []
    with QuiesceResponder(mount / wsid, on_freeze=lambda: freezes.append(1)).running_in_thread():
        accepted = submit(api, wsid, {"snapshot_id": snapshot_id, "remove": ["build", ".env", "lnk", "not/there"]})
        assert accepted.status_code == 202, accepted.text
        task = wait_task(api, accepted.json()["task_id"])
    new_live_id = accepted.json()["params"]["new_live_id"]
    assert is_uuid(new_live_id), "chosen by the server"
    assert task["status"] == "SUCCEEDED", task
    new_live = mount / wsid / "live" / new_live_id
    assert task["result"] == {"current_path": str(new_live), "removed": 3, "noop": False}
    assert freezes == [1], "the switch is quiesced"
    current = api.get(f"/v1/workspaces/{wsid}/current").json()
    assert (current["current_snapshot_id"], current["current_path"]) == (snapshot_id, str(new_live))
    assert os.readlink(mount / wsid / "current") == f"live/{new_live_id}"
    assert sorted(os.listdir(new_live)) == ["notes.txt", "src"], "the link went, not what it pointed to"
    assert (new_live / "src" / "main.py").read_text() == "print('kept')\n"
    snapshot = snapshots_dir(mount, wsid) / snapshot_id
    assert sorted(os.listdir(snapshot)) == [".env", "build", "lnk", "notes.txt", "src"], "the snapshot is untouched"
    assert (mount / wsid / first_live / "scratch.txt").exists(), "the replaced tree is kept"


def test_a_path_through_a_link_fails_for_good_and_changes_nothing(api: httpx.Client, deployment: Deployment) -> None:
    wsid, mount = "clean-link", deployment.mount
    snapshot_id = workspace_with_snapshot(api, mount, wsid)
    live, current = sorted(os.listdir(mount / wsid / "live")), os.readlink(mount / wsid / "current")

    task = run_checkout_clean(api, mount, wsid, {"snapshot_id": snapshot_id, "remove": ["lnk/main.py"]})
    assert task["status"] == "DEAD" and task["attempt"] == 1, task
    assert task["error"]["reason"] == "PATH_THROUGH_LINK", task
    assert (sorted(os.listdir(mount / wsid / "live")), os.readlink(mount / wsid / "current")) == (live, current)
    assert (mount / wsid / "current" / "src" / "main.py").exists()
    assert area_names(WorkspaceLayout(mount, wsid).tmp_dir) == [], "nothing was cloned"


def test_the_jsonl_notifier_receives_every_event_in_order(api: httpx.Client, deployment: Deployment) -> None:
    wsid, mount = "clean-events", deployment.mount
    snapshot_id = workspace_with_snapshot(api, mount, wsid)
    task = run_checkout_clean(api, mount, wsid, {"snapshot_id": snapshot_id, "remove": ["build"]})
    assert task["status"] == "SUCCEEDED", task

    recorded = api.get("/v1/events", params={"wsid": wsid, "limit": 100}).json()["items"]
    deadline = time.monotonic() + 30
    while True:  # delivered by the worker's dispatcher, after the transaction that recorded it
        lines = deployment.events_file.read_text().splitlines() if deployment.events_file.exists() else []
        received = [event for event in map(json.loads, lines) if event["wsid"] == wsid]
        if len(received) >= len(recorded) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [event["event_id"] for event in received] == [event["event_id"] for event in recorded]
    assert received == [{key: e[key] for key in e if key != "deliveries"} for e in recorded], "the same JSON"
    assert [event["type"] for event in received if event["task_id"] == task["task_id"]] == [
        "task.created",
        "task.started",
        "task.succeeded",
        "current.changed",
    ]
    assert received[-1]["data"]["after"] == {
        "current_snapshot_id": snapshot_id,
        "current_path": task["result"]["current_path"],
    }


def test_fsck_keeps_the_tree_the_op_declares(api: httpx.Client, deployment: Deployment) -> None:
    wsid, mount = "clean-fsck", deployment.mount
    first = workspace_with_snapshot(api, mount, wsid)
    task = run_checkout_clean(api, mount, wsid, {"snapshot_id": first, "remove": [".env"]})
    made = Path(task["result"]["current_path"])
    # current moves on to the op's next tree: the first is no longer current. (A rollback would not do: it keeps
    # the tree it replaces as a snapshot, and a kept tree is fsck's to keep whatever made it.)
    again = run_checkout_clean(api, mount, wsid, {"snapshot_id": first, "remove": ["build"]})
    assert again["result"]["current_path"] != str(made)

    fsck = deployment.wvs("fsck", wsid, "--fix", "--prune", "--json")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    report = json.loads(fsck.stdout)
    assert (report["checked"], report["skipped"], report["findings"]) == ([wsid], [], [])
    assert made.is_dir() and (made / "src" / "main.py").exists()

    # Control: what keeps it is the op's declaration. Without the package, fsck cannot tell who made the tree:
    # it reports it for a person to judge and never prunes it, not even when told to.
    without = {key: value for key, value in deployment.env.items() if key != "PYTHONPATH"}
    without["WVS_CONFIG"] = str(deployment.write_config("without-plugin.toml", '["log"]'))
    unaccounted = deployment.wvs("fsck", wsid, "--fix", "--prune", "--json", env=without)
    assert unaccounted.returncode == 1, unaccounted.stdout + unaccounted.stderr
    findings = json.loads(unaccounted.stdout)["findings"]
    detail = f"{made} (tasks of ops not loaded here: checkout_clean)"
    assert [(f["kind"], f["detail"], f["fixed"]) for f in findings] == [("live_tree_unaccounted", detail, False)]
    assert made.is_dir() and (made / "src" / "main.py").exists()


def test_a_pending_task_of_the_op_protects_its_snapshot(api: httpx.Client, deployment: Deployment) -> None:
    wsid, mount = "clean-pending", deployment.mount
    snapshot_id = workspace_with_snapshot(api, mount, wsid)
    deployment.stop("worker")  # nothing claims tasks: the op's task stays PENDING
    try:
        pending = submit(api, wsid, {"snapshot_id": snapshot_id, "remove": ["build"]}).json()
        assert api.get(f"/v1/tasks/{pending['task_id']}").json()["status"] == "PENDING"
        refused = api.delete(f"/v1/workspaces/{wsid}/snapshots/{snapshot_id}", headers=key())
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "WVS_CONFLICT_SNAPSHOT_IN_USE"
        assert pending["task_id"] in refused.json()["error"]["message"], "the reason: the op's reference"
        canceled = api.post(f"/v1/tasks/{pending['task_id']}:cancel", json={})
        assert canceled.json()["status"] == "CANCELED", canceled.text
        dropped = api.delete(f"/v1/workspaces/{wsid}/snapshots/{snapshot_id}", headers=key())
        assert dropped.status_code == 202, dropped.text
    finally:
        deployment.start("worker")
    assert wait_task(api, dropped.json()["task_id"])["status"] == "SUCCEEDED"


def test_wvsctl_task_submit_runs_the_op(api: httpx.Client, deployment: Deployment) -> None:
    wsid, mount = "clean-cli", deployment.mount
    snapshot_id = workspace_with_snapshot(api, mount, wsid)
    # The CLI knows no op: it reads the params' types from GET /v1/ops, so it needs no plugin installed.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    params = ("--param", f"snapshot_id={snapshot_id}", "--param", 'remove=["build", "notes.txt"]', "--wait", "--json")
    with QuiesceResponder(mount / wsid).running_in_thread():
        submitted = subprocess.run(
            [str(BIN / "wvsctl"), "--api-url", deployment.url, "task", "submit", OP, "--wsid", wsid, *params],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    task = json.loads(submitted.stdout)
    assert task["op"] == OP and task["params"]["remove"] == ["build", "notes.txt"]
    assert task["status"] == "SUCCEEDED" and task["result"]["removed"] == 2
    assert sorted(os.listdir(mount / wsid / "current")) == [".env", "lnk", "src"]


def test_the_copytree_backend_carries_a_snapshot_and_a_rollback(
    example_site: Path, postgres: Any, juicefs_volume: JuiceFSVolume, tmp_path: Path
) -> None:
    wsid, mount = "copytree-ws", new_mount(juicefs_volume)
    with (
        fresh_database(postgres) as dsn,
        Deployment(example_site, dsn, mount, tmp_path, storage="copytree") as running,
        httpx.Client(base_url=running.url, timeout=30) as client,
    ):
        create_workspace(client, wsid)
        populate_tree(mount / wsid / "current")
        original = tree_signature(mount / wsid / "current")
        snapshot_id = take_snapshot(client, mount, wsid)
        assert tree_signature(snapshots_dir(mount, wsid) / snapshot_id) == original, "an exact copy"
        (mount / wsid / "current" / "src" / "pkg" / "main.py").write_text("changed")
        shutil.rmtree(mount / wsid / "current" / "empty dir")
        with QuiesceResponder(mount / wsid).running_in_thread():
            rollback = client.post(
                f"/v1/workspaces/{wsid}/current:set", json={"snapshot_id": snapshot_id}, headers=key()
            )
            assert wait_task(client, rollback.json()["task_id"])["status"] == "SUCCEEDED"
        assert tree_signature(mount / wsid / "current") == original
        task = run_checkout_clean(client, mount, wsid, {"snapshot_id": snapshot_id, "remove": ["big.bin"]})
        assert task["status"] == "SUCCEEDED", task
        assert tree_signature(mount / wsid / "current") == {
            path: entry for path, entry in original.items() if path != "big.bin"
        }, "the op clones with whichever backend is configured"
