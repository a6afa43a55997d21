"""Every ``wvs`` process that cannot start as configured ends in one line naming the setting (its config key
and environment variable) and exit status 2, never a traceback: a setting missing or wrong, a database that
does not answer or was never migrated, an address taken (API, metrics, gRPC), a mount path that is not there.
Each command runs as a real process, as a new user would run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from wvs_core.config import ENV_OVERRIDES
from wvs_core.embedded import EmbeddedPostgres

BIN = Path(sys.executable).parent
NO_SERVER = "postgresql://postgres@/wvs?host=/nonexistent-socket-dir"
ADDRESSES = ("WVS_LISTEN_ADDR", "WVS_METRICS_ADDR", "EXECUTOR_GRPC_ADDR", "EXECUTOR_METRICS_ADDR")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any WVS setting, every address on a free loopback port (a default such as the
    metrics' 0.0.0.0:9090 may be taken on a shared machine, and that error would come first), plus ``extra``."""
    dropped = {*ENV_OVERRIDES, "WVS_CONFIG", "WVS_DATA_DIR"}
    free = {name: f"127.0.0.1:{free_port()}" for name in ADDRESSES}
    return {key: value for key, value in os.environ.items() if key not in dropped} | free | extra


def run_wvs(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wvs"), *args], env=env, capture_output=True, text=True, timeout=90)


def assert_refused(run: subprocess.CompletedProcess[str], *named: str) -> None:
    """Exit status 2 and exactly one line on stderr, ``Error: …``, naming each of ``named``."""
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, (run.returncode, run.stderr)
    assert lines[0].startswith("Error: "), lines[0]
    for name in named:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


@pytest.mark.parametrize("command", [["api"], ["worker"], ["migrate"], ["fsck"]])
def test_no_dsn_is_one_line_naming_it(command: list[str], tmp_path: Path) -> None:
    env = clean_env(EXECUTOR_MOUNT_PATH=str(tmp_path), WVS_DATA_DIR=str(tmp_path / "no-wvs-up"))
    assert_refused(run_wvs(*command, env=env), "database.dsn", "WVS_DB_DSN")


# Each waits STARTUP_PATIENCE (10 s) for a database that may be restarting: once for the planes (api and worker
# share their start-up check, db.engine.check_database) and once for migrate.
UNREACHABLE = (("api",), ("migrate",))


@pytest.fixture(scope="module", autouse=True)
def unreachable_runs() -> Iterator[dict[tuple[str, ...], subprocess.Popen[str]]]:
    """The UNREACHABLE commands on a DSN no server answers, started together as this module begins: their
    patience runs out while the other tests run, not one after another. Killed if still running at the end."""
    running = {
        command: subprocess.Popen(
            [str(BIN / "wvs"), *command],
            env=clean_env(WVS_DB_DSN=NO_SERVER),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in UNREACHABLE
    }
    yield running
    for process in running.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=90)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize(
    ("command", "dsn", "says"),
    [
        *((command, "mysql://db/wvs", "must be a PostgreSQL URL") for command in (["api"], ["worker"], ["migrate"])),
        *((list(command), NO_SERVER, "cannot reach the database") for command in UNREACHABLE),
    ],
)
def test_a_wrong_dsn_is_one_line_naming_it(
    command: list[str], dsn: str, says: str, unreachable_runs: dict[tuple[str, ...], subprocess.Popen[str]]
) -> None:
    if dsn == NO_SERVER:
        run = finished(unreachable_runs[tuple(command)])
    else:
        run = run_wvs(*command, env=clean_env(WVS_DB_DSN=dsn))
    assert_refused(run, "database.dsn", "WVS_DB_DSN", says)


@pytest.mark.parametrize("plane", ["api", "worker"])
def test_a_database_never_migrated_says_to_migrate(plane: str, postgres: EmbeddedPostgres) -> None:
    name = f"unmigrated_{plane}"
    postgres.psql(f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};")
    run = run_wvs(plane, env=clean_env(WVS_DB_DSN=postgres.dsn(name)))
    assert_refused(run, "database.dsn", "WVS_DB_DSN", "wvs migrate")


Settings = Callable[[int], dict[str, str]]
TAKEN_ADDRESSES: list[tuple[str, Settings, str, str]] = [
    ("api", lambda port: {"WVS_LISTEN_ADDR": f"127.0.0.1:{port}"}, "api.listen_addr", "WVS_LISTEN_ADDR"),
    ("api", lambda port: {"WVS_METRICS_ADDR": f"127.0.0.1:{port}"}, "api.metrics_addr", "WVS_METRICS_ADDR"),
    ("worker", lambda port: {"WVS_METRICS_ADDR": f"127.0.0.1:{port}"}, "worker.metrics_addr", "WVS_METRICS_ADDR"),
    ("executor", lambda port: {"EXECUTOR_METRICS_ADDR": f"127.0.0.1:{port}"}, "executor.metrics_addr", "EXECUTOR_"),
    ("executor", lambda port: {"EXECUTOR_GRPC_ADDR": f"127.0.0.1:{port}"}, "executor.grpc_addr", "EXECUTOR_GRPC"),
]


@pytest.mark.parametrize(("plane", "settings", "key", "variable"), TAKEN_ADDRESSES)
def test_an_address_in_use_is_one_line_naming_it(
    plane: str, settings: Settings, key: str, variable: str, database: str, taken_port: int, tmp_path: Path
) -> None:
    env = clean_env(WVS_DB_DSN=database, EXECUTOR_MOUNT_PATH=str(tmp_path), **settings(taken_port))
    assert_refused(run_wvs(plane, env=env), key, variable, f"127.0.0.1:{taken_port}", "in use")


def test_a_second_executor_on_the_same_port_is_refused_not_handed_half_the_calls(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(EXECUTOR_GRPC_ADDR=f"127.0.0.1:{port}", EXECUTOR_MOUNT_PATH=str(tmp_path))
    first = subprocess.Popen(
        [str(BIN / "wvs"), "executor"],
        env=env | {"EXECUTOR_METRICS_ADDR": f"127.0.0.1:{free_port()}"},
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert first.poll() is None and time.monotonic() < deadline, "the first executor never listened"
            time.sleep(0.1)
        second = run_wvs("executor", env=env | {"EXECUTOR_METRICS_ADDR": f"127.0.0.1:{free_port()}"})
        assert_refused(second, "executor.grpc_addr", "EXECUTOR_GRPC_ADDR", "in use")
    finally:
        first.terminate()
        first.wait(30)


@pytest.mark.parametrize("mount", ["missing", "a-file"])
def test_a_mount_path_that_is_not_there_is_one_line_naming_it(mount: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    env = clean_env(EXECUTOR_MOUNT_PATH=str(tmp_path / mount), EXECUTOR_METRICS_ADDR=f"127.0.0.1:{free_port()}")
    assert_refused(run_wvs("executor", env=env), "executor.mount_path", "EXECUTOR_MOUNT_PATH", str(tmp_path / mount))


@pytest.mark.parametrize("command", [["api"], ["worker"], ["executor"], ["plugins"], ["fsck"], ["migrate"]])
def test_a_wrong_value_or_file_is_one_line_naming_it(command: list[str], tmp_path: Path) -> None:
    run = run_wvs(*command, env=clean_env(WORKER_POLL_INTERVAL="soon"))
    assert_refused(run, "worker.poll_interval", "WORKER_POLL_INTERVAL")
    run = run_wvs(*command, "--config", str(tmp_path / "absent.toml"), env=clean_env())
    assert_refused(run, "absent.toml", "--config", "WVS_CONFIG")


@pytest.mark.parametrize("command", [["api"], ["worker"], ["executor"], ["plugins"], ["fsck"]])
def test_a_plugin_nothing_provides_is_one_line_naming_the_key(command: list[str], tmp_path: Path) -> None:
    (tmp_path / "wvs.toml").write_text('[plugins]\nstorage = "nonesuch"\n')
    run = run_wvs(*command, env=clean_env(WVS_CONFIG=str(tmp_path / "wvs.toml"), WVS_DB_DSN=NO_SERVER))
    assert_refused(run, "plugins.storage", "nonesuch")


def test_wvs_up_on_a_port_in_use_says_so_before_starting_anything(taken_port: int, tmp_path: Path) -> None:
    run = run_wvs("up", "--port", str(taken_port), "--data-dir", str(tmp_path / "data"), env=clean_env())
    assert_refused(run, "--port", f"127.0.0.1:{taken_port}", "in use")
    assert not (tmp_path / "data" / "postgres").exists(), "PostgreSQL was started for nothing"
