"""Where a running ``wvs up`` is: the state file it keeps in its data directory, for wvsctl and ``wvs fsck``.

``wvs up`` writes ``<data-dir>/state.json`` once every plane serves and removes it when it stops cleanly:
``{"api_url", "dsn", "mount_path", "storage", "pid", "data_dir"}``. A file left by a ``wvs up`` killed with
kill -9 names a dead pid and is ignored (the next ``wvs up`` rewrites it). The data directory is
``WVS_DATA_DIR`` when set, else the user's data directory (``platformdirs``), for ``wvs up`` and its readers
alike. Imports nothing heavy: wvsctl calls ``default_api_url`` on every start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import platformdirs

from wvs_core.fsutil import atomic_write_bytes

STATE_FILE = "state.json"
DEFAULT_API_URL = "http://localhost:8080"


def default_data_dir() -> Path:
    """``WVS_DATA_DIR``, or the user's data directory for ``wvs`` (``~/.local/share/wvs`` on Linux)."""
    return Path(os.environ.get("WVS_DATA_DIR") or platformdirs.user_data_dir("wvs"))


@attrs.frozen
class UpState:
    """What a running ``wvs up`` serves: its API's URL, its embedded database's DSN, the mount path and
    storage backend of its volume, its pid and its data directory."""

    api_url: str
    dsn: str
    mount_path: str
    storage: str
    pid: int
    data_dir: str

    def write(self) -> Path:
        """Write the state file into ``data_dir`` (atomically; then made readable by this user only); returns
        its path."""
        path = Path(self.data_dir) / STATE_FILE
        atomic_write_bytes(path, (json.dumps(attrs.asdict(self), indent=2) + "\n").encode())
        path.chmod(0o600)  # the DSN reaches the database as its superuser
        return path


def remove_state(data_dir: Path) -> None:
    """Remove ``data_dir``'s state file (missing is fine)."""
    (data_dir / STATE_FILE).unlink(missing_ok=True)


def running_up(data_dir: Path | None = None) -> UpState | None:
    """The state of the ``wvs up`` running on ``data_dir`` (default: ``default_data_dir()``); None when there
    is no state file, it is not one ``wvs up`` wrote, or the process that wrote it is gone."""
    path = (data_dir or default_data_dir()) / STATE_FILE
    try:
        state = UpState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return state if _alive(state.pid) else None


def default_api_url() -> str:
    """The API of the ``wvs up`` running on the default data directory, else ``http://localhost:8080``: where
    clients go when given no URL."""
    state = running_up()
    return state.api_url if state is not None else DEFAULT_API_URL


def _alive(pid: int) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
