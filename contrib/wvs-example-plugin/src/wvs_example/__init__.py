"""An example third-party WVS plugin: the ``checkout_clean`` op, the ``jsonl`` notifier and the ``copytree``
storage backend, registered through the hooks of ``wvs_core.hookspecs`` like any built-in.

WVS finds this module through the package's entry point (``[project.entry-points.wvs]`` in its pyproject),
so installing the package is all it takes: nothing in WVS itself names it.
"""

from wvs_core import hookimpl
from wvs_core.notifier import Notifier
from wvs_core.ops import TaskOp
from wvs_core.storage import StorageBackend
from wvs_example.checkout_clean import CheckoutClean
from wvs_example.copytree import CopyTreeBackend
from wvs_example.jsonl import JsonlNotifier


@hookimpl
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``checkout_clean``."""
    return [CheckoutClean()]


@hookimpl
def wvs_register_notifiers() -> list[type[Notifier]]:
    """Provide ``jsonl`` (enabled by listing it in ``plugins.notifiers``)."""
    return [JsonlNotifier]


@hookimpl
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Provide ``copytree`` (selected with ``plugins.storage = "copytree"``)."""
    return [CopyTreeBackend]
