"""Bearer tokens for the API: who may call it, whether they may write, and whose workspaces they see.

The tokens file (``api.tokens_file``) lists one table per token and never holds a token itself, only its
SHA-256::

    [[tokens]]
    subject = "ci-bot"      # recorded as the actor of every write it makes; owns what it creates
    role = "write"          # "read": GET only; "write": everything; "admin": everything, on every workspace
    owners = ["team-a"]     # optional: other owners it acts for, besides its subject
    sha256 = "9f86d0…"      # hex SHA-256 of the token; `wvs token new` prints token and table

Without a tokens file the API is open (the embedded default, listening on 127.0.0.1). The file is
followed while the API runs (``TokenFile``).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import secrets
import time
import tomllib
from pathlib import Path

import attrs
import cattrs

from wvs_core.convert import describe_error, structure
from wvs_core.errors import ConfigError
from wvs_core.scope import EVERYTHING, Scope, check_owner

TOKEN_PREFIX = "wvs_"
RELOAD_CHECK = 1.0  # seconds between looks at the tokens file for changes

log = logging.getLogger(__name__)


class Role(enum.StrEnum):
    """What a token may do."""

    READ = "read"  # GET only, on the workspaces of its subject and owners
    WRITE = "write"  # every method, on the workspaces of its subject and owners
    ADMIN = "admin"  # every method, on every workspace


def _check_digest(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {value!r}")


def _check_owners(instance: Principal, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    for owner in value:
        check_owner(instance, attribute, owner)
    if value and instance.role == Role.ADMIN:
        raise ValueError("owners: an admin token acts for every owner already; leave owners out")


@attrs.frozen
class Principal:
    """The holder of a token: ``subject`` (an owner name), ``role``, and the ``owners`` it also acts for."""

    subject: str = attrs.field(validator=check_owner)
    role: Role
    sha256: str = attrs.field(validator=_check_digest, repr=False)
    owners: tuple[str, ...] = attrs.field(default=(), validator=_check_owners)

    def may(self, method: str) -> bool:
        """Whether this principal may send a request with ``method``."""
        return self.role != Role.READ or method in ("GET", "HEAD")

    @property
    def scope(self) -> Scope:
        """The workspaces it sees and acts on: every one for an admin, else those owned by its subject or
        by one of its ``owners``."""
        if self.role == Role.ADMIN:
            return EVERYTHING
        return Scope(owners=frozenset((self.subject, *self.owners)))


@attrs.frozen
class _TokensFile:
    tokens: list[Principal]


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``, as the tokens file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenTable:
    """The principals of a tokens file, looked up by the digest of a presented token."""

    def __init__(self, principals: list[Principal]) -> None:
        self._by_digest = {principal.sha256: principal for principal in principals}

    @classmethod
    def load(cls, path: str | Path) -> TokenTable:
        """Read ``path``; raises ConfigError naming ``api.tokens_file`` when it is missing or wrong."""
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
            principals = structure(raw, _TokensFile).tokens
        except OSError as error:
            raise ConfigError(f"api.tokens_file: cannot read {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"api.tokens_file: {path} is not valid TOML: {error}") from None
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            raise ConfigError(f"api.tokens_file: {path}: {describe_error(error)}") from None
        digests = [principal.sha256 for principal in principals]
        if len(set(digests)) != len(digests):
            raise ConfigError(f"api.tokens_file: {path} lists the same token twice")
        return cls(principals)

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding ``token``, or None. Only digests are compared, so lookup time reveals
        nothing about the stored tokens."""
        return self._by_digest.get(token_digest(token))


class TokenFile:
    """The tokens file, followed: an edit (new token, revoked token) takes effect within RELOAD_CHECK
    seconds, no restart needed. An edit that breaks the file is logged and ignored: the previous tokens
    stay in force, so a typo neither locks every client out nor opens the API."""

    def __init__(self, path: str | Path) -> None:
        """Load ``path``; raises ConfigError naming ``api.tokens_file`` when it is missing or wrong."""
        self.path = Path(path)
        try:
            self._stamp: tuple[int, int, int] | None = _stamp(self.path)  # before reading: no edit is missed
        except OSError:
            self._stamp = None  # the load below says why
        self._table = TokenTable.load(self.path)
        self._checked = time.monotonic()

    def authenticate(self, token: str) -> Principal | None:
        """The principal holding ``token`` in the file as it is now, or None."""
        self._reload_if_changed()
        return self._table.authenticate(token)

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK:
            return
        self._checked = now
        try:
            stamp = _stamp(self.path)
        except OSError as error:
            log.error("tokens file %s unreadable (%s); keeping the tokens loaded before", self.path, error.strerror)
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._table = TokenTable.load(self.path)
        except ConfigError as error:
            log.error("%s; keeping the tokens loaded before", error)
            return
        log.info("tokens file %s reloaded", self.path)


def _stamp(path: Path) -> tuple[int, int, int]:
    """What changes when the file is edited or replaced."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
