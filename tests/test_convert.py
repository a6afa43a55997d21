"""The converter: strict scalars, lists of names and real enums."""

from __future__ import annotations

import pytest

from wvs_core.convert import structure
from wvs_core.models import TaskStatus, WorkspaceState


def test_strings_become_real_enums() -> None:
    status = structure("PENDING", TaskStatus)
    assert status is TaskStatus.PENDING and not status.is_terminal
    assert structure("ACTIVE", WorkspaceState) is WorkspaceState.ACTIVE
    with pytest.raises(ValueError):
        structure("NOPE", TaskStatus)


def test_no_silent_coercion() -> None:
    with pytest.raises(ValueError):
        structure(1, str)
    with pytest.raises(ValueError):
        structure(True, int)
    with pytest.raises(ValueError):
        structure("maybe", bool)
    assert structure("yes", bool) is True and structure("12", int) == 12


def test_a_list_of_names_is_never_a_string_taken_apart() -> None:
    assert structure(["team", "ops"], tuple[str, ...]) == ("team", "ops")
    with pytest.raises(ValueError, match="list of strings"):
        structure("team", tuple[str, ...])
    with pytest.raises(ValueError):
        structure(["team", 1], tuple[str, ...])
