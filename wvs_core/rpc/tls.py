"""gRPC credentials from ``[executor.tls]`` and ``[worker.tls]`` (see ``TlsConfig``)."""

from __future__ import annotations

from pathlib import Path

import grpc

from wvs_core.config import TlsConfig
from wvs_core.errors import ConfigError


def server_credentials(tls: TlsConfig, section: str = "executor.tls") -> grpc.ServerCredentials | None:
    """The executor's credentials, or None for plaintext; with ``ca_file``, clients must present a
    certificate it signed. Raises ConfigError naming the key of an unreadable file."""
    if not tls.cert_file:
        return None
    client_ca = _read(tls, "ca_file", section) if tls.ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(tls, "key_file", section), _read(tls, "cert_file", section))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def channel_credentials(tls: TlsConfig, section: str = "worker.tls") -> grpc.ChannelCredentials | None:
    """A scheduler's credentials for its executors, or None for plaintext. Raises ConfigError naming the
    key of an unreadable file."""
    if not tls.ca_file:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls, "ca_file", section),
        private_key=_read(tls, "key_file", section) if tls.key_file else None,
        certificate_chain=_read(tls, "cert_file", section) if tls.cert_file else None,
    )


def _read(tls: TlsConfig, key: str, section: str) -> bytes:
    path = getattr(tls, key)
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{section}.{key}: cannot read {path}: {error.strerror}") from None
