"""The data-directory lock of ``wvs up``: exclusive, never waits, names its holder, released on exit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wvs_core.datadir import LOCK_FILE, DataDirBusy, hold_data_dir


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    with hold_data_dir(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
        with pytest.raises(DataDirBusy) as busy, hold_data_dir(tmp_path):
            pass
        assert busy.value.pid == os.getpid()
        assert str(busy.value) == (
            f"another `wvs up` (pid {os.getpid()}) is using {tmp_path}; stop it first or choose another --data-dir"
        )
    with hold_data_dir(tmp_path):  # released
        pass


def test_a_holder_without_a_recorded_pid_is_reported_without_one(tmp_path: Path) -> None:
    with hold_data_dir(tmp_path):
        (tmp_path / LOCK_FILE).write_text("")
        with pytest.raises(DataDirBusy, match=r"^another `wvs up` is using") as busy, hold_data_dir(tmp_path):
            pass
        assert busy.value.pid is None
