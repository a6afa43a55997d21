"""Who can call an executor (SPEC §5, §13): by default it listens on loopback only; on any other address it
needs mutual TLS or an explicit ``executor.insecure``, else it refuses to start with one line naming them."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.conftest import make_config
from tests.test_tls import make_ca, make_cert
from wvs_core.config import Config, TlsConfig, load_config
from wvs_core.errors import ConfigError
from wvs_core.listen import split_addr
from wvs_core.rpc.binding import check_executor_binding, is_loopback
from wvs_core.rpc.client import ExecutorClient
from wvs_core.rpc.tls import channel_credentials
from wvs_core.runtime import Service

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
REFUSAL = r"^executor\.grpc_addr \S+ is not a loopback address.*executor\.insecure = true"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, the executor's certificate (for 127.0.0.1) and a scheduler's, both signed by it."""
    directory = tmp_path_factory.mktemp("binding-pki")
    make_ca(directory, "wvs-ca")
    make_cert(directory, "executor", "wvs-ca", "IP:127.0.0.1")
    make_cert(directory, "scheduler", "wvs-ca", "DNS:scheduler")
    return directory


def executor_config(mount: Path, **executor: Any) -> Config:
    """An executor-only config on a plain directory (no database, no FUSE needed)."""
    return make_config("", mount, storage="localfs", executor=executor)


@asynccontextmanager
async def running_executor(config: Config) -> AsyncIterator[int]:
    """The executor plane alone, stopped on exit; yields its port."""
    service = Service(config, planes=("executor",), serve_metrics=False)
    await service.start()
    try:
        yield split_addr(service.executor_addr or "")[1]
    finally:
        await service.stop()


def listening_on(port: int) -> set[IPAddress]:
    """The addresses this process listens on at ``port`` (IPv4-mapped IPv6 ones as IPv4: gRPC binds
    ``127.0.0.1`` as ``::ffff:127.0.0.1`` and ``0.0.0.0`` as ``::`` on a dual-stack socket)."""
    found: set[IPAddress] = set()
    for connection in psutil.Process().net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            address = ipaddress.ip_address(connection.laddr.ip)
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            found.add(mapped or address)
    return found


async def answers(addr: str, tls: TlsConfig | None = None) -> bool:
    """True when an executor answers a call at ``addr`` (as a scheduler with ``tls``)."""
    client = ExecutorClient(addr, channel_credentials(tls) if tls else None)
    try:
        return await client.cancel("no-such-task") is False
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("LocalHost", True), ("0.0.0.0", False), ("::", False), ("[::]", False), ("", False),
     ("192.0.2.1", False), ("executor", False), ("127.0.0.1.example.com", False)],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_by_default_the_executor_listens_on_loopback_only(tmp_path: Path) -> None:
    host, port = split_addr(load_config(env={}).executor.grpc_addr)
    assert (host, port) == ("127.0.0.1", 7070)
    async with running_executor(executor_config(tmp_path, grpc_addr=f"{host}:0")) as port:
        assert listening_on(port) == {ipaddress.ip_address("127.0.0.1")}
        assert await answers(f"127.0.0.1:{port}")
        for addresses in psutil.net_if_addrs().values():  # this machine's other addresses do not answer
            for address in addresses:
                if address.family == socket.AF_INET and not is_loopback(address.address):
                    with pytest.raises(OSError):  # refused, or dropped by a firewall: not reachable either way
                        socket.create_connection((address.address, port), timeout=5).close()


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:7070", "executor:7070"])
def test_plaintext_off_loopback_is_refused(tmp_path: Path, addr: str) -> None:
    with pytest.raises(ConfigError, match=REFUSAL):
        Service(executor_config(tmp_path, grpc_addr=addr), planes=("executor",))


def test_tls_without_client_certificates_is_refused_off_loopback(tmp_path: Path, pki: Path) -> None:
    server_only = {"cert_file": str(pki / "executor.crt"), "key_file": str(pki / "executor.key")}
    with pytest.raises(ConfigError, match=REFUSAL):
        Service(executor_config(tmp_path, grpc_addr="0.0.0.0:0", tls=server_only), planes=("executor",))


def test_wvs_executor_refuses_in_one_line(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "WVS_CONFIG" and not key.startswith("EXECUTOR_")}
    env |= {"EXECUTOR_GRPC_ADDR": "0.0.0.0:0", "EXECUTOR_MOUNT_PATH": str(tmp_path)}
    run = subprocess.run([str(BIN / "wvs"), "executor"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: executor.grpc_addr 0.0.0.0:0 is not a loopback"), lines
    assert "EXECUTOR_INSECURE=true" in lines[0]


async def test_insecure_lets_it_listen_everywhere(tmp_path: Path) -> None:
    async with running_executor(executor_config(tmp_path, grpc_addr="0.0.0.0:0", insecure=True)) as port:
        assert any(address.is_unspecified for address in listening_on(port))
        assert await answers(f"127.0.0.1:{port}")


async def test_mutual_tls_lets_it_listen_everywhere(tmp_path: Path, pki: Path) -> None:
    tls = {"cert_file": str(pki / "executor.crt"), "key_file": str(pki / "executor.key"),
           "ca_file": str(pki / "wvs-ca.crt")}  # fmt: skip
    async with running_executor(executor_config(tmp_path, grpc_addr="0.0.0.0:0", tls=tls)) as port:
        assert any(address.is_unspecified for address in listening_on(port))
        scheduler = TlsConfig(
            ca_file=str(pki / "wvs-ca.crt"), cert_file=str(pki / "scheduler.crt"), key_file=str(pki / "scheduler.key")
        )
        assert await answers(f"127.0.0.1:{port}", scheduler)


def test_the_compose_executor_is_reachable_by_workers_only_on_its_private_network() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    executor = services["executor"]
    config = load_config(env={key: str(value) for key, value in executor["environment"].items()})
    check_executor_binding(config.executor)
    host, port = split_addr(config.executor.grpc_addr)
    assert config.executor.insecure and not is_loopback(host)
    assert "ports" not in executor, "the executor's port must not be published outside the compose network"
    assert services["wvs-worker"]["environment"]["EXECUTOR_ADDRS"] == f"executor:{port}"


def test_the_example_config_may_start_an_executor() -> None:
    check_executor_binding(load_config(ROOT / "contrib" / "wvs.example.toml", env={}).executor)
