"""Who can reach an executor (SPEC §5, §13): it listens on loopback unless its callers are authenticated by
mutual TLS or the operator says, with ``executor.insecure = true``, that the network is private."""

from __future__ import annotations

import ipaddress

from wvs_core.config import ExecutorConfig
from wvs_core.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1`` (bracketed or not); False for every
    other name (it is not resolved) and for wildcards such as ``0.0.0.0``, ``::`` or an empty host."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_executor_binding(settings: ExecutorConfig) -> None:
    """Refuse to serve the executor where anyone on the network could call it.

    Off loopback, ``[executor.tls]`` must require client certificates (``cert_file``, ``key_file`` and
    ``ca_file``) unless ``insecure`` is set. Raises ConfigError naming ``executor.grpc_addr`` and the two
    ways out.
    """
    host = settings.grpc_addr.rpartition(":")[0]
    mutual_tls = bool(settings.tls.cert_file and settings.tls.ca_file)
    if is_loopback(host) or mutual_tls or settings.insecure:
        return
    raise ConfigError(
        f"executor.grpc_addr {settings.grpc_addr} is not a loopback address, and whoever reaches the executor "
        "can change every workspace: configure mutual TLS ([executor.tls] cert_file, key_file and ca_file) "
        "or, on a private network, set executor.insecure = true (EXECUTOR_INSECURE=true)"
    )
