"""Reading and writing an agent view the way a careful root process reads untrusted input (SPEC §13).

An agent may put anything anywhere in ``<mount>/<wsid>/``: links, FIFOs, device nodes, huge files, another
workspace's paths, and swap them between WVS's check and its use. So nothing here opens a path: every
name is resolved from a directory descriptor one component at a time with ``O_NOFOLLOW``, and what is
found is checked on the descriptor (``fstat``), not on the name. The one link WVS follows is ``current``,
and only after reading it as exactly ``live/<uuid>``. Files are opened first with ``O_PATH`` (which opens
nothing: no FIFO blocks, no device is touched), checked to be regular and small, and only then reopened
for reading through ``/proc/self/fd`` — the very inode that was checked.

Anything that is not what WVS made raises ``WorkspaceTampered``; executor ops turn it into a permanent
``WORKSPACE_TAMPERED`` failure. Nothing ever moves from an agent view into WVS's area: an inode the agent
reached (an open descriptor, a hard link elsewhere in its view) would stay writable there. What WVS keeps of
a view it clones (``wvs_core.keeping``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from wvs_core.ids import is_uuid
from wvs_core.layout import CURRENT, LIVE, WorkspaceLayout
from wvs_core.treewalk import DIRECTORY_FLAGS, remove_entry

TAMPERED = "WORKSPACE_TAMPERED"
_TEMPORARY_SUFFIX = ".wvs-tmp"  # WVS's own temporary names in a view: fixed, so recovery never lists a directory
LOCK_FILE_ATTEMPTS = 3  # looks at a lock file that vanishes between the look and the open before WVS gives up


class WorkspaceTampered(Exception):
    """The agent view is not as WVS made it: a link, a missing entry or another kind of file where WVS's
    directory, link or file belongs. Permanent: retrying cannot help."""


class AgentView:
    """An open handle on one workspace's agent view; use as a context manager (it holds descriptors).

    ``open`` checks that ``<mount>/<wsid>`` is a real directory; the methods below resolve everything else
    beneath it without following links.
    """

    def __init__(self, layout: WorkspaceLayout, root: int, agent: tuple[int, int] | None = None) -> None:
        self.layout = layout
        self.agent = agent
        self._root = root
        self._dirs: dict[str, int] = {}

    @classmethod
    def open(cls, layout: WorkspaceLayout, create: bool = False, agent: tuple[int, int] | None = None) -> AgentView:
        """Open the view of ``layout``; with ``create``, make the directory first if it is missing. The
        directories made for the agent to write in (its live trees, ``.wvs``) are given to ``agent``
        (``(uid, gid)``) when set; everything else in the view stays WVS's.

        Raises WorkspaceTampered when the view is missing (without ``create``), is not a real directory, or
        is not owned by this process's user (WVS made it; anyone else could have planted it in advance).
        The root is kept closed to everyone but WVS and the agent's group.
        """
        mount = os.open(layout.mount, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # configured: trusted
        try:
            if create:
                _mkdir_at(mount, layout.wsid)
            root = _open_dir_at(mount, layout.wsid, str(layout.root))
        finally:
            os.close(mount)
        info = os.fstat(root)
        if info.st_uid != os.geteuid():  # someone else made it before WVS did (or gave it away since)
            os.close(root)
            raise WorkspaceTampered(f"{layout.root} is owned by uid {info.st_uid}, not by WVS")
        _close_to_others(root, info, agent)
        return cls(layout, root, agent)

    def close(self) -> None:
        """Close every descriptor; safe to call twice."""
        for fd in [*self._dirs.values(), self._root]:
            if fd >= 0:
                os.close(fd)
        self._dirs.clear()
        self._root = -1

    def __enter__(self) -> AgentView:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def describe(self, *names: str) -> str:
        """A path for messages (never opened)."""
        return str(self.layout.root.joinpath(*names))

    # --- directories ----------------------------------------------------------------------------

    def directory(self, name: str, create: bool = False) -> int:
        """The descriptor of the view's directory ``name`` (``live``, ``.wvs``), kept open with the view.

        With ``create``, a missing directory is made first. Raises WorkspaceTampered when it is missing
        or is a link or another kind of file.
        """
        if name not in self._dirs:
            if create:
                _mkdir_at(self._root, name)
            self._dirs[name] = _open_dir_at(self._root, name, self.describe(name))
        return self._dirs[name]

    def give_to_agent(self, name: str) -> None:
        """Hand the view's directory ``name`` (``.wvs``) to the agent's user, when one is configured."""
        if self.agent is not None:
            os.fchown(self.directory(name), *self.agent)

    def remove_empty_directory(self, name: str) -> None:
        """Remove the view's empty directory ``name`` (``rmdir``: a link or a non-empty one stays, OSError)."""
        if name in self._dirs:
            os.close(self._dirs.pop(name))
        os.rmdir(name, dir_fd=self._root)

    def entries(self, directory: str | None = None) -> list[str]:
        """Names in the view's root or in its directory ``directory`` (none when that does not exist)."""
        if directory is not None and _kind_at(self._root, directory) is None:
            return []
        return sorted(os.listdir(self._root if directory is None else self.directory(directory)))

    def open_directory(self, *names: str) -> int:
        """A new descriptor (the caller closes it) of the real directory ``<names…>`` below the view's root."""
        fd = os.dup(self._root)
        try:
            for depth, name in enumerate(names, 1):
                parent, fd = fd, -1
                try:
                    fd = _open_dir_at(parent, name, self.describe(*names[:depth]))
                finally:
                    os.close(parent)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return fd

    def open_live_tree(self, live_id: str) -> int:
        """A new descriptor (the caller closes it) of the real directory ``live/<live_id>``."""
        return _open_dir_at(self.directory(LIVE), live_id, self.describe(LIVE, live_id))

    def has_live_tree(self, live_id: str) -> bool:
        """Whether ``live/<live_id>`` exists; raises WorkspaceTampered when it is not a real directory."""
        kind = _kind_at(self.directory(LIVE), live_id)
        if kind is None:
            return False
        if not stat.S_ISDIR(kind):
            raise WorkspaceTampered(f"{self.describe(LIVE, live_id)} is not a directory")
        return True

    def remove_tree(self, directory: str, name: str) -> None:
        """Remove ``<directory>/<name>`` and everything below it by descriptors, never following a link; never
        with a storage tool that resolves paths in the view (``juicefs rmr`` opens a control file in the
        parent directory, which the agent could have planted)."""
        remove_entry(name, self.directory(directory))

    def adopt_live_tree(self, tree: os.PathLike[str], live_id: str) -> None:
        """Rename ``tree`` (a finished clone in WVS's area) to ``live/<live_id>``, into the directory that was
        checked, whatever the agent has done to the name ``live`` since."""
        os.rename(tree, live_id, dst_dir_fd=self.directory(LIVE))
        os.fsync(self.directory(LIVE))

    # --- current --------------------------------------------------------------------------------

    def current_live_id(self) -> str:
        """The live tree ``current`` points to: its target must read exactly ``live/<uuid>``.

        Raises WorkspaceTampered when ``current`` is missing, not a link, or points anywhere else.
        """
        try:
            target = os.readlink(CURRENT, dir_fd=self._root)
        except FileNotFoundError:
            raise WorkspaceTampered(f"{self.describe(CURRENT)} is missing") from None
        except OSError as error:
            if error.errno == errno.EINVAL:
                raise WorkspaceTampered(f"{self.describe(CURRENT)} is not a link") from None
            raise
        prefix, _, live_id = target.partition("/")
        if prefix != LIVE or not is_uuid(live_id) or target != self.layout.current_target(live_id):
            raise WorkspaceTampered(f"{self.describe(CURRENT)} points to {target!r}, not to live/<id>")
        return live_id

    def points_to(self, live_id: str) -> bool:
        """Whether ``current`` reads exactly ``live/<live_id>`` (anything else, a missing link included: no)."""
        try:
            return os.readlink(CURRENT, dir_fd=self._root) == self.layout.current_target(live_id)
        except OSError:
            return False

    def switch_current(self, live_id: str) -> None:
        """Point ``current`` at ``live/<live_id>`` atomically: a new link under a temporary name, then
        ``rename(2)`` over ``current``. Raises WorkspaceTampered when ``current`` is a directory."""
        temporary = temporary_name(CURRENT)
        self._unlink(self._root, temporary)  # a leftover of a crash (ops of a workspace never overlap)
        os.symlink(self.layout.current_target(live_id), temporary, dir_fd=self._root)
        try:
            os.rename(temporary, CURRENT, src_dir_fd=self._root, dst_dir_fd=self._root)
        except (IsADirectoryError, NotADirectoryError):
            os.unlink(temporary, dir_fd=self._root)
            raise WorkspaceTampered(f"{self.describe(CURRENT)} is a directory, not a link") from None
        os.fsync(self._root)

    # --- small files (the quiesce handshake) ----------------------------------------------------

    def read_file(self, directory: str, name: str, limit: int) -> bytes | None:
        """The content of ``<directory>/<name>`` when it is a regular file of at most ``limit`` bytes; None
        when it (or ``directory``) is missing or anything else (a link, a FIFO, a device, a directory, a
        larger file).

        Never blocks: the file is checked through an ``O_PATH`` descriptor before it is opened for reading.
        """
        if _kind_at(self._root, directory) is None:
            return None
        return read_small_file_at(self.directory(directory), name, limit)

    def replace_file(self, directory: str, name: str, data: bytes) -> None:
        """Replace ``<directory>/<name>`` with ``data`` atomically: a new file under a temporary name (created
        exclusively, never through a link), then ``rename(2)``."""
        parent = self.directory(directory)
        temporary = temporary_name(name)
        self._unlink(parent, temporary, directory)  # callers serialize their writes (a lock), so this is ours
        try:
            fd = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent
            )
        except FileExistsError:
            where = self.describe(directory, temporary)
            raise WorkspaceTampered(f"{where}, WVS's temporary name, was made again by someone else") from None
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except (IsADirectoryError, NotADirectoryError, FileNotFoundError):
            # ``name`` is a directory, or the agent swapped or removed WVS's temporary file before the rename
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise WorkspaceTampered(f"{self.describe(directory, name)} could not be replaced: tampered with") from None
        os.fsync(parent)

    def open_lock_file(self, directory: str, name: str) -> int | None:
        """A descriptor of the lock file ``<directory>/<name>`` (created when missing) for ``flock``; None
        while the agent holds a lease on it (opening would wait for the lease to break); raises
        WorkspaceTampered when it is a link or not a regular file, or keeps vanishing and reappearing between
        the look and the open (the agent creating it at the same moment, once or twice, is fine). Never blocks."""
        flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # flock needs no more
        parent = self.directory(directory)
        for _attempt in range(LOCK_FILE_ATTEMPTS):
            try:
                handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            except FileNotFoundError:
                try:
                    return os.open(name, flags | os.O_EXCL, 0o644, dir_fd=parent)
                except FileExistsError:
                    continue  # made meanwhile (the agent takes the same lock): look again
            try:
                if not stat.S_ISREG(os.fstat(handle).st_mode):
                    raise WorkspaceTampered(f"{self.describe(directory, name)} is not a regular file")
                return os.open(f"/proc/self/fd/{handle}", flags & ~(os.O_CREAT | os.O_NOFOLLOW))
            except BlockingIOError:  # a lease: O_NONBLOCK refuses to wait for its break
                return None
            finally:
                os.close(handle)
        raise WorkspaceTampered(f"{self.describe(directory, name)} keeps vanishing and reappearing")

    # --- leftovers --------------------------------------------------------------------------------

    def leftover(self, directory: str | None, name: str, remove: bool) -> bool:
        """Whether a crash left WVS's temporary file ``temporary_name(name)`` in the view's root or in
        ``directory``; with ``remove``, unlink it. Never lists a directory (an agent may fill one)."""
        if directory is not None and _kind_at(self._root, directory) is None:
            return False
        parent = self._root if directory is None else self.directory(directory)
        if not remove:
            return _kind_at(parent, temporary_name(name)) is not None
        return self._unlink(parent, temporary_name(name), directory)

    def _unlink(self, parent: int, name: str, directory: str | None = None) -> bool:
        """Unlink ``name`` in ``parent`` (``directory`` of the view, None: its root); False when missing."""
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            where = self.describe(*([] if directory is None else [directory]), name)
            raise WorkspaceTampered(f"{where} is a directory where WVS keeps a temporary file") from None
        return True


def temporary_name(name: str) -> str:
    """The name WVS writes ``name`` under before ``rename(2)``-ing it into place: ``.<name>.wvs-tmp``."""
    return f".{name}{_TEMPORARY_SUFFIX}"


def read_small_file_at(parent: int, name: str, limit: int) -> bytes | None:
    """The content of ``name`` in the directory open as ``parent`` when it is a regular file of at most
    ``limit`` bytes, else None; never follows a link, never blocks (see ``AgentView.read_file``)."""
    try:
        handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        fd = os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except BlockingIOError:  # the agent holds a lease: opening would wait for its break; no answer
        return None
    finally:
        os.close(handle)
    try:
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def _close_to_others(root: int, info: os.stat_result, agent: tuple[int, int] | None) -> None:
    """The view's root: WVS's, entered by the agent's group only (0710), or by no one else at all (0700) —
    other users of the host never read a workspace."""
    group, mode = (agent[1], 0o710) if agent is not None else (info.st_gid, 0o700)
    if info.st_gid != group:
        os.fchown(root, -1, group)
    if stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(root, mode)


def _kind_at(parent: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None


def _mkdir_at(parent: int, name: str) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent)


def _open_dir_at(parent: int, name: str, described: str) -> int:
    """``openat(parent, name, O_DIRECTORY|O_NOFOLLOW)``, every refusal a WorkspaceTampered."""
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        raise WorkspaceTampered(f"{described} is missing") from None
    except NotADirectoryError:
        raise WorkspaceTampered(f"{described} is not a directory") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise WorkspaceTampered(f"{described} is a link") from None
        raise
