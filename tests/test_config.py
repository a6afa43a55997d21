"""Configuration: TOML file, SPEC §8 environment overrides, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from wvs_core import config as wvs_config
from wvs_core.config import load_config
from wvs_core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wvs.toml"
    path.write_text(text)
    return path


def test_defaults_follow_the_spec() -> None:
    config = load_config(env={})
    assert config.api.listen_addr == "0.0.0.0:8080"
    assert config.api.metrics_addr == "0.0.0.0:9090"
    assert config.worker.metrics_addr == "0.0.0.0:9091"
    assert config.executor.grpc_addr == "127.0.0.1:7070" and config.executor.insecure is False
    assert config.executor.metrics_addr == "0.0.0.0:9092"
    assert config.executor.mount_path == "/ws"
    assert config.executor.task_timeout == 300
    assert config.executor.quiesce_timeout == 30
    assert config.worker.poll_interval == 1 and config.worker.idle_backoff == 5
    assert config.worker.shutdown_timeout == 120 and config.executor.shutdown_timeout == 300
    assert (config.worker.retry_base, config.worker.retry_max, config.worker.max_attempts) == (5, 300, 5)
    assert (config.plugins.storage, config.plugins.quiesce, config.plugins.queue) == (
        "juicefs",
        "control-json",
        "postgres",
    )


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        log_level = "debug"
        [database]
        dsn = "postgresql://file@db/wvs"
        [worker]
        poll_interval = "250ms"
        executor_addrs = ["a:1"]
        [plugins.settings.juicefs]
        binary = "/opt/juicefs"
        """,
    )
    env = {
        "WVS_DB_DSN": "postgresql://env@db/wvs",
        "EXECUTOR_ADDRS": "exec-1:7070, exec-2:7070",
        "EXECUTOR_QUIESCE_TIMEOUT": "10s",
        "EXECUTOR_TASK_TIMEOUT": "2m",
        "WVS_METRICS_ADDR": "127.0.0.1:9999",
        "EXECUTOR_INSECURE": "true",
    }
    config = load_config(path, env=env)
    assert config.database.dsn == "postgresql://env@db/wvs"
    assert config.worker.executor_addrs == ["exec-1:7070", "exec-2:7070"]
    assert config.worker.poll_interval == 0.25
    assert config.executor.quiesce_timeout == 10 and config.executor.task_timeout == 120
    assert config.api.metrics_addr == config.worker.metrics_addr == "127.0.0.1:9999"
    assert config.executor.insecure is True
    assert config.plugins.settings_for("juicefs") == {"binary": "/opt/juicefs"}
    assert config.log_level == "debug"


@pytest.mark.parametrize(
    ("text", "env", "named"),
    [
        ("[worker]\npoll_interval = 'soon'", {}, "worker.poll_interval"),
        ("[worker]\npoll_interval = nan", {}, "worker.poll_interval"),  # TOML has nan and inf: not durations
        ("[worker]\nlease = inf", {}, "worker.lease"),
        ("[worker]\npoll_interval = 5e-324", {}, "worker.poll_interval"),  # a busy loop
        ("", {"WORKER_IDLE_BACKOFF": "0.5ms"}, "worker.idle_backoff"),
        ("[worker]\nlease = 1e20", {}, "worker.lease"),  # overflows PostgreSQL's timestamps at every claim
        ("[worker]\nretry_max = 1000000000000000000000000000000", {}, "worker.retry_max"),
        ("[executor]\ntask_timeout = 0.9\nquiesce_timeout = 0.5", {}, "task_timeout must be at least 1s"),
        ("[worker]\nconcurrency = 0", {}, "concurrency"),
        ("[api]\nlisten_addr = 'nowhere'", {}, "listen_addr"),
        ("[worker]\nsurprise = 1", {}, "surprise"),
        ("", {"EXECUTOR_GRPC_ADDR": "bad"}, "grpc_addr"),
        ("", {"WORKER_IDLE_BACKOFF": "-1s"}, "worker.idle_backoff"),
        ("", {"EXECUTOR_INSECURE": "maybe"}, "executor.insecure"),
        ("", {"EXECUTOR_QUIESCE_TIMEOUT": "400s"}, "quiesce_timeout"),
        ("log_level = 'loud'", {}, "log_level"),
    ],
)
def test_a_wrong_value_names_its_key(tmp_path: Path, text: str, env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=env)
    assert named in str(caught.value)


def test_missing_and_malformed_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[worker"), env={})


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "contrib" / "wvs.example.toml"
    config = load_config(example, env={})
    assert config.worker.executor_addrs == ["executor:7070"]
    assert config.plugins.settings_for("postgres") == {"channel": "wvs_tasks"}


def test_the_documented_retention_tables_are_valid(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    example = (root / "contrib" / "wvs.example.toml").read_text()
    start = example.index("# [retention]")
    commented = example[start : example.index("\n\n", start)]
    uncommented = "\n".join(line.removeprefix("# ") for line in commented.splitlines())
    config = load_config(write(tmp_path, uncommented), env={})
    assert (config.retention.keep_last, config.retention.keep_within) == (10, "2d")
    assert config.retention.keep_labels == ("pin",)

    operations = (root / "docs" / "operations.md").read_text()
    section = operations[operations.index("## Retention") :]
    block = section[section.index("```toml\n") + len("```toml\n") : section.index("```\n", section.index("```toml"))]
    documented = load_config(write(tmp_path, block), env={})
    assert documented.retention.keep_daily == 7 and not documented.retention.is_empty()
    assert load_config(root / "contrib" / "wvs.example.toml", env={}).worker.retention_interval == 600


def config_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key of the config file, dotted: ``worker.lease``, ``executor.tls.ca_file``, …"""
    attrs.resolve_types(cls, globalns=vars(wvs_config))
    keys = []
    for field in attrs.fields(cls):
        if isinstance(field.type, type) and attrs.has(field.type):
            keys += config_keys(field.type, f"{prefix}{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


def test_the_example_config_shows_every_key() -> None:
    """contrib/wvs.example.toml is where an operator looks up the keys: each is set there or shown commented."""
    text = (Path(__file__).resolve().parent.parent / "contrib" / "wvs.example.toml").read_text()
    table, shown = "", set()
    for line in text.splitlines():
        line = line.removeprefix("# ").strip()
        if header := re.fullmatch(r"\[([a-z_.]+)\]", line):
            table = header[1] + "."
            parts = header[1].split(".")
            shown.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))  # a table of tables: a key too
        elif key := re.match(r"([a-z_]+) = ", line):
            shown.add(table + key[1])
    missing = [key for key in config_keys(wvs_config.Config) if key not in shown]
    assert not missing, f"contrib/wvs.example.toml shows no {missing}"
