"""A local JuiceFS volume (sqlite3 metadata, local file storage) for ``wvs up`` and tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from wvs_core.volume import LocalVolume
from wvs_juicefs.binary import find_juicefs

MOUNT_TIMEOUT = 30.0


def is_mounted(path: Path) -> bool:
    """True when a JuiceFS volume is mounted at ``path``."""
    target = str(path.resolve())
    with open("/proc/mounts", encoding="utf-8") as mounts:
        return any(
            fields[1] == target and fields[2].startswith("fuse.juicefs")
            for fields in (line.split() for line in mounts)
            if len(fields) >= 3
        )


def fuse_unavailable_reason() -> str | None:
    """Why a FUSE mount cannot work here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not readable and writable by this user"
    if os.geteuid() != 0 and shutil.which("fusermount") is None and shutil.which("fusermount3") is None:
        return "not root and no fusermount helper installed"
    return None


class JuiceFSVolume(LocalVolume):
    """Formats (once) and mounts a JuiceFS volume whose metadata and data live under ``base``, with extended
    attributes, POSIX ACLs and file capabilities enabled so agents can use them and clones keep them."""

    storage = "juicefs"

    def __init__(self, base: Path, name: str = "wvs", binary: str | None = None) -> None:
        self.base = base
        self.name = name
        self.binary = find_juicefs(binary)
        self.meta_url = f"sqlite3://{base / 'meta.db'}"
        self.mount_path = base / "mnt"

    def start(self) -> JuiceFSVolume:
        """Format on first use, then mount in the background and wait until the mount is live."""
        self.base.mkdir(parents=True, exist_ok=True)
        if not (self.base / "meta.db").exists():
            self._juicefs(
                "format",
                "--storage",
                "file",
                "--bucket",
                str(self.base / "bucket"),
                "--enable-acl",
                self.meta_url,
                self.name,
            )
        else:  # a volume formatted before ACLs were enabled by default gets them (irreversibly: ACLs are data)
            self._juicefs("config", "--yes", "--enable-acl", self.meta_url)
        self.mount_path.mkdir(exist_ok=True)
        if is_mounted(self.mount_path):  # left over by a process that died
            self._juicefs("umount", "--force", str(self.mount_path))
        self._juicefs(
            "mount",
            "--background",
            "--no-usage-report",
            "--enable-xattr",  # xattrs, and with --enable-acl at format POSIX ACLs, are part of an exact clone
            "--enable-cap",
            "--cache-dir",
            str(self.base / "cache"),
            "--log",
            str(self.base / "juicefs.log"),
            self.meta_url,
            str(self.mount_path),
        )
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not is_mounted(self.mount_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"JuiceFS did not mount at {self.mount_path}; see {self.base / 'juicefs.log'}")
            time.sleep(0.05)
        # A fresh volume's root is 0777: anyone could plant a future workspace, WVS's area, or the
        # .jfs.control file every `juicefs clone` opens in the volume's root.
        self.mount_path.chmod(0o755)
        return self

    def close(self) -> None:
        """Unmount (forcing it if a process still holds files open)."""
        if not is_mounted(self.mount_path):
            return
        try:
            self._juicefs("umount", str(self.mount_path))
        except subprocess.CalledProcessError:
            self._juicefs("umount", "--force", str(self.mount_path))

    def _juicefs(self, *args: str) -> None:
        subprocess.run([self.binary, *args], check=True, capture_output=True, text=True)
