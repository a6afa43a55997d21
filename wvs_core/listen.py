"""The addresses a process listens on (``HOST:PORT`` settings), refused at start-up in one line naming the
setting when they are taken or cannot be bound."""

from __future__ import annotations

import socket

from wvs_core.errors import StartupError


def split_addr(addr: str) -> tuple[str, int]:
    """``"host:port"`` → ``("host", port)``; an empty host is ``0.0.0.0``, brackets are dropped from IPv6."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def cannot_listen(named: str, addr: str, error: OSError) -> StartupError:
    """The start-up error for the setting ``named`` (``config.setting(key)``, or a command-line option) whose
    address ``addr`` could not be bound."""
    return StartupError(f"{named}: cannot listen on {addr}: {error.strerror or error}")


def bind(named: str, addr: str) -> socket.socket:
    """A listening TCP socket on ``addr`` (port 0: one the OS chooses), the value of the setting ``named``.

    Raises StartupError naming the setting when the address is in use, not this host's, or not resolvable.
    """
    host, port = split_addr(addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise cannot_listen(named, addr, error) from None


def ensure_free(named: str, addr: str) -> None:
    """Raise StartupError (as ``bind``) unless ``addr`` could be listened on right now, for a server that binds
    it itself and would report a taken port less clearly."""
    bind(named, addr).close()
