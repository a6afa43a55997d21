"""Configuration: one TOML file plus the SPEC §8 environment variables as overrides."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from wvs_core.convert import Seconds, describe_error, positive, structure
from wvs_core.errors import ConfigError
from wvs_core.retention import RetentionPolicy


def _check_addr(_instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{attribute.name} must be HOST:PORT, got {value!r}")


def _at_least_a_second(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value < 1:
        raise ValueError(
            f"{attribute.name} must be at least 1s (a task keeps its timeout in whole seconds), got {value!r}"
        )


@attrs.frozen
class DatabaseConfig:
    """The WVS database."""

    dsn: str = ""  # SQLAlchemy URL, postgresql+asyncpg://…; WVS_DB_DSN
    pool_size: int = 10


@attrs.frozen
class ApiConfig:
    """The control plane (``wvs api``)."""

    listen_addr: str = attrs.field(default="0.0.0.0:8080", validator=_check_addr)
    metrics_addr: str = attrs.field(default="0.0.0.0:9090", validator=_check_addr)
    max_body_bytes: int = 64 * 1024
    # A request's head must arrive within this of the connection opening (or of the previous response),
    # else the connection is closed; its body within this of the route reading it, else 400.
    read_timeout: Seconds = attrs.field(default=Seconds(10.0), validator=positive)
    shutdown_timeout: Seconds = Seconds(30.0)
    tokens_file: str = ""  # bearer tokens (see wvs_core.auth); empty: no authentication


@attrs.frozen
class TlsConfig:
    """gRPC TLS between schedulers and executors, as PEM files; all empty: plaintext.

    Executor (``[executor.tls]``): ``cert_file`` + ``key_file`` turn TLS on; ``ca_file`` then requires
    client certificates it signed (mutual TLS). Scheduler (``[worker.tls]``): ``ca_file`` turns TLS on and
    verifies executors' certificates; ``cert_file`` + ``key_file`` are its client certificate.
    """

    cert_file: str = ""
    key_file: str = attrs.field(default="")
    ca_file: str = ""

    @key_file.validator
    def _check_pair(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if bool(value) != bool(self.cert_file):
            raise ValueError("cert_file and key_file go together")


@attrs.frozen
class WorkerConfig:
    """The scheduling plane (``wvs worker``)."""

    metrics_addr: str = attrs.field(default="0.0.0.0:9091", validator=_check_addr)
    executor_addrs: list[str] = attrs.field(factory=lambda: ["127.0.0.1:7070"])
    concurrency: int = attrs.field(default=16, validator=positive)
    poll_interval: Seconds = attrs.field(default=Seconds(1.0), validator=positive)
    idle_backoff: Seconds = attrs.field(default=Seconds(5.0), validator=positive)
    shutdown_timeout: Seconds = Seconds(120.0)
    retry_base: Seconds = attrs.field(default=Seconds(5.0), validator=positive)  # backoff 5s·2^(n-1)
    retry_max: Seconds = attrs.field(default=Seconds(300.0), validator=positive)
    max_attempts: int = attrs.field(default=5, validator=positive)
    lease: Seconds = attrs.field(default=Seconds(30.0), validator=positive)  # renewed every lease/3
    retention_interval: Seconds = attrs.field(default=Seconds(600.0), validator=positive)  # applying policies
    tls: TlsConfig = attrs.field(factory=TlsConfig)

    @executor_addrs.validator
    def _check_executor_addrs(self, attribute: attrs.Attribute[list[str]], value: list[str]) -> None:
        if not value:
            raise ValueError("executor_addrs needs at least one HOST:PORT")
        for addr in value:
            _check_addr(self, attribute, addr)


@attrs.frozen
class EventsConfig:
    """The event dispatcher, in every ``wvs worker`` (one at a time delivers; the others stand by)."""

    dispatch: bool = True  # false: this worker never delivers events (another process must)
    poll_interval: Seconds = attrs.field(default=Seconds(1.0), validator=positive)  # besides NOTIFY wake-ups
    concurrency: int = attrs.field(default=16, validator=positive)  # deliveries in flight per subscription


def _check_owner(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    uid, colon, gid = value.partition(":")
    if value and not (colon and uid.isascii() and uid.isdigit() and gid.isascii() and gid.isdigit()):
        raise ValueError(f"agent_owner must be UID:GID (numbers), got {value!r}")


@attrs.frozen
class ExecutorConfig:
    """The execution plane (``wvs executor``)."""

    grpc_addr: str = attrs.field(default="127.0.0.1:7070", validator=_check_addr)  # see wvs_core.rpc.binding
    metrics_addr: str = attrs.field(default="0.0.0.0:9092", validator=_check_addr)
    mount_path: str = "/ws"
    task_timeout: Seconds = attrs.field(default=Seconds(300.0), validator=_at_least_a_second)  # tasks keep whole s
    quiesce_timeout: Seconds = attrs.field(default=Seconds(30.0), validator=positive)
    shutdown_timeout: Seconds = Seconds(300.0)
    tls: TlsConfig = attrs.field(factory=TlsConfig)
    insecure: bool = False  # plaintext gRPC off loopback, for a private network only
    agent_owner: str = attrs.field(default="", validator=_check_owner)  # "UID:GID" the agents run as

    @property
    def agent_ids(self) -> tuple[int, int] | None:
        """``agent_owner`` as ``(uid, gid)``; None when unset (the agent view stays root's)."""
        if not self.agent_owner:
            return None
        uid, gid = self.agent_owner.split(":")
        return int(uid), int(gid)


@attrs.frozen
class PluginsConfig:
    """Which plugin provides each building block, and each plugin's own settings."""

    storage: str = "juicefs"
    quiesce: str = "control-json"
    queue: str = "postgres"
    notifiers: list[str] = attrs.field(factory=lambda: ["log", "webhook"])
    modules: list[str] = attrs.field(factory=list)  # extra plugin modules to import by name
    settings: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # [plugins.settings.<name>]

    def settings_for(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.settings.<name>]`` table (empty when absent)."""
        return self.settings.get(name, {})


@attrs.frozen
class Config:
    """A whole deployment's configuration."""

    database: DatabaseConfig = attrs.field(factory=DatabaseConfig)
    api: ApiConfig = attrs.field(factory=ApiConfig)
    worker: WorkerConfig = attrs.field(factory=WorkerConfig)
    executor: ExecutorConfig = attrs.field(factory=ExecutorConfig)
    events: EventsConfig = attrs.field(factory=EventsConfig)
    plugins: PluginsConfig = attrs.field(factory=PluginsConfig)
    retention: RetentionPolicy = attrs.field(factory=RetentionPolicy)  # for workspaces without their own
    log_level: str = attrs.field(default="info")

    @log_level.validator
    def _check_log_level(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"log_level must be debug, info, warning, error or critical, got {value!r}")

    def __attrs_post_init__(self) -> None:
        if self.executor.quiesce_timeout >= self.executor.task_timeout:
            raise ValueError(
                "executor.quiesce_timeout must be below executor.task_timeout "
                f"({self.executor.quiesce_timeout}s >= {self.executor.task_timeout}s)"
            )


# SPEC §8 environment variables and the config key each one overrides.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "WVS_DB_DSN": ("database.dsn",),
    "WVS_LISTEN_ADDR": ("api.listen_addr",),
    "WVS_METRICS_ADDR": ("api.metrics_addr", "worker.metrics_addr"),
    "WVS_LOG_LEVEL": ("log_level",),
    "WVS_SHUTDOWN_TIMEOUT": ("api.shutdown_timeout",),
    "EXECUTOR_ADDRS": ("worker.executor_addrs",),
    "WORKER_POLL_INTERVAL": ("worker.poll_interval",),
    "WORKER_IDLE_BACKOFF": ("worker.idle_backoff",),
    "WORKER_SHUTDOWN_TIMEOUT": ("worker.shutdown_timeout",),
    "EXECUTOR_GRPC_ADDR": ("executor.grpc_addr",),
    "EXECUTOR_METRICS_ADDR": ("executor.metrics_addr",),
    "EXECUTOR_MOUNT_PATH": ("executor.mount_path",),
    "EXECUTOR_TASK_TIMEOUT": ("executor.task_timeout",),
    "EXECUTOR_QUIESCE_TIMEOUT": ("executor.quiesce_timeout",),
    "EXECUTOR_SHUTDOWN_TIMEOUT": ("executor.shutdown_timeout",),
    "EXECUTOR_INSECURE": ("executor.insecure",),
    "EXECUTOR_AGENT_OWNER": ("executor.agent_owner",),
}
LIST_KEYS = {"worker.executor_addrs"}


def setting(key: str) -> str:
    """How a user sets the config key ``key``, for messages: ``"api.metrics_addr (WVS_METRICS_ADDR)"``, or the
    key alone when no environment variable overrides it."""
    names = [var for var, keys in ENV_OVERRIDES.items() if key in keys]
    return f"{key} ({', '.join(names)})" if names else key


def _set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {part!r} must be a table")
        node = child
    node[leaf] = value


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (TOML; ``WVS_CONFIG`` when None; defaults when neither) and apply env overrides.

    Raises ConfigError naming the offending key for any unknown key or wrong value, and the environment
    variable when one set it.
    """
    env = os.environ if env is None else env
    path = path or env.get("WVS_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path} (--config, WVS_CONFIG)") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} (--config, WVS_CONFIG) is not valid TOML: {error}") from None
    set_by: dict[str, str] = {}  # config key → the environment variable that set it
    for var, keys in ENV_OVERRIDES.items():
        if (raw := env.get(var)) is not None:
            for key in keys:
                value: Any = [a.strip() for a in raw.split(",") if a.strip()] if key in LIST_KEYS else raw
                _set_key(data, key, value)
                set_by[key] = var
    try:
        return config_from_dict(data)
    except ConfigError as error:
        named = _variables_named(str(error), set_by)
        if not named:
            raise
        raise ConfigError(f"{error} (set by {', '.join(named)})") from None


def _variables_named(message: str, set_by: Mapping[str, str]) -> list[str]:
    """The environment variables (of ``set_by``: key → variable) whose keys a config error names: each part
    ends ``@ PATH``, the key itself or, for a validator's error, its table with the key's name in the text."""
    named: dict[str, None] = {}
    for part in message.split("; "):
        if (found := re.search(r"@ ([\w.]+)$", part)) is None:
            continue
        path = found.group(1)
        for key, var in set_by.items():
            if key == path or (key.rpartition(".")[0] == path and re.search(rf"\b{key.rpartition('.')[2]}\b", part)):
                named[var] = None
    return list(named)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build a Config from plain data, with the same error reporting as ``load_config``."""
    try:
        return structure(dict(data), Config)
    except (cattrs.BaseValidationError, ValueError, TypeError) as error:
        raise ConfigError(f"invalid configuration: {describe_error(error)}") from None
