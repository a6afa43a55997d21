"""The ``juicefs`` storage backend: metadata-only clones on a JuiceFS mount."""

from __future__ import annotations

import logging
from pathlib import Path

from wvs_core import hookimpl
from wvs_core.storage import StorageBackend
from wvs_core.volume import LocalVolume
from wvs_juicefs.backend import JuiceFSBackend
from wvs_juicefs.volume import JuiceFSVolume, fuse_unavailable_reason

log = logging.getLogger(__name__)


@hookimpl(trylast=True)
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Provide the ``juicefs`` backend."""
    return [JuiceFSBackend]


@hookimpl(trylast=True)
def wvs_local_volume(data_dir: Path, storage: str) -> LocalVolume | None:
    """A JuiceFS volume under ``data_dir/juicefs`` when the config asks for ``juicefs`` and FUSE is usable."""
    if storage != JuiceFSBackend.name:
        return None
    reason = fuse_unavailable_reason()
    if reason is not None:
        log.warning("JuiceFS needs FUSE, which is not usable here: %s", reason)
        return None
    return JuiceFSVolume(data_dir / "juicefs").start()
