"""Storage backends keep every attribute; juicefs on a real mount, localfs on the local disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import populate_tree, tree_signature
from wvs_core.storage import StorageError
from wvs_juicefs.backend import JuiceFSBackend
from wvs_localfs import LocalFSBackend


@pytest.fixture(params=["localfs", "juicefs"])
def backend_and_dir(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "juicefs":
        return JuiceFSBackend({}), request.getfixturevalue("mount")
    return LocalFSBackend({}), tmp_path


async def test_clone_keeps_content_mode_owner_times_and_links(backend_and_dir) -> None:
    backend, base = backend_and_dir
    source = base / "source"
    source.mkdir()
    populate_tree(source)
    await backend.clone_tree(source, base / "clone")
    assert tree_signature(base / "clone") == tree_signature(source)
    (source / "src" / "pkg" / "main.py").write_text("changed after the clone")
    assert (base / "clone" / "src" / "pkg" / "main.py").read_text() == "print('hello')\n"


async def test_remove_is_idempotent_and_a_failed_clone_is_a_storage_error(backend_and_dir) -> None:
    backend, base = backend_and_dir
    (base / "tree" / "deep" / "er").mkdir(parents=True)
    (base / "tree" / "deep" / "er" / "f").write_text("x")
    with pytest.raises(StorageError) as caught:
        await backend.clone_tree(base / "missing-source", base / "target")
    assert caught.value.reason == "CLONE_FAILED"
    await backend.remove_tree(base / "tree")
    assert not (base / "tree").exists()
    await backend.remove_tree(base / "tree")
