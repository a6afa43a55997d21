"""Schedulers and executors over mutual TLS: a scheduler with a certificate the executor's CA signed runs
tasks; one without a certificate, with a stranger's, or in plaintext never reaches the executor."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService, make_config
from tests.helpers import free_port, key, wait_task
from wvs_core.errors import ConfigError
from wvs_core.runtime import Service


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip


def make_cert(directory: Path, name: str, ca: str, alt_names: str) -> None:
    (directory / f"{name}.ext").write_text(f"subjectAltName={alt_names}\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)  # fmt: skip
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA signing the executor's and a scheduler's certificates, and a stranger's CA and certificate."""
    directory = tmp_path_factory.mktemp("pki")
    make_ca(directory, "wvs-ca")
    make_cert(directory, "executor", "wvs-ca", "IP:127.0.0.1,DNS:localhost")
    make_cert(directory, "scheduler", "wvs-ca", "DNS:scheduler")
    make_ca(directory, "stranger-ca")
    make_cert(directory, "stranger", "stranger-ca", "DNS:stranger")
    return directory


def client_tls(pki: Path, who: str | None) -> dict[str, str]:
    """``[worker.tls]`` trusting the WVS CA, with ``who``'s certificate (None: no certificate)."""
    if who is None:
        return {"ca_file": str(pki / "wvs-ca.crt")}
    return {
        "ca_file": str(pki / "wvs-ca.crt"),
        "cert_file": str(pki / f"{who}.crt"),
        "key_file": str(pki / f"{who}.key"),
    }


@pytest.mark.parametrize(
    ("client", "reaches_the_executor"),
    [("scheduler", True), ("no certificate", False), ("stranger", False), ("plaintext", False)],
)
async def test_only_a_scheduler_with_a_trusted_certificate_reaches_the_executor(
    database: str, mount: Path, start_service: StartService, pki: Path, client: str, reaches_the_executor: bool
) -> None:
    grpc_addr = f"127.0.0.1:{free_port()}"
    server_tls = {
        "cert_file": str(pki / "executor.crt"),
        "key_file": str(pki / "executor.key"),
        "ca_file": str(pki / "wvs-ca.crt"),
    }
    worker_tls = {"scheduler": client_tls(pki, "scheduler"), "no certificate": client_tls(pki, None),
                  "stranger": client_tls(pki, "stranger"), "plaintext": {}}[client]  # fmt: skip
    base = {"database": database, "mount": mount, "plugins": {"quiesce": "none"}}
    api = await start_service(
        make_config(**base, executor={"grpc_addr": grpc_addr, "tls": server_tls}), planes=("api", "executor")
    )
    await start_service(
        make_config(**base, worker={"executor_addrs": [grpc_addr], "tls": worker_tls, "max_attempts": 1}),
        planes=("worker",),
    )
    async with httpx.AsyncClient(base_url=api.api_url or "", timeout=30) as http:
        accepted = (await http.post("/v1/workspaces", json={"wsid": "secured", "owner": "o"}, headers=key())).json()
        task = await wait_task(http, accepted["init_task_id"])
    if reaches_the_executor:
        assert task["status"] == "SUCCEEDED", task
        assert (mount / "secured" / "current").is_symlink()
    else:
        assert task["status"] == "DEAD" and task["error"]["reason"] == "EXECUTOR_UNAVAILABLE", task
        assert not (mount / "secured").exists()


def test_an_unreadable_certificate_is_a_startup_error_naming_the_key(database: str, mount: Path, pki: Path) -> None:
    broken = {"cert_file": str(pki / "missing.crt"), "key_file": str(pki / "executor.key")}
    with pytest.raises(ConfigError, match=r"executor\.tls\.cert_file: cannot read"):
        Service(make_config(database, mount, executor={"tls": broken}), planes=("executor",))
    with pytest.raises(ConfigError, match=r"cert_file and key_file go together @ worker\.tls"):
        make_config(database, mount, worker={"tls": {"ca_file": str(pki / "wvs-ca.crt"), "key_file": "k.pem"}})
