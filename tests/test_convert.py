"""The converter: strict scalars, lists of names and real enums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from wvs_core.convert import structure, structure_request
from wvs_core.errors import ErrorCode, WVSError
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


COLLECTIONS = [list[str], tuple[str, ...], set[str], frozenset[str], Sequence[str], list[int], tuple[int, ...]]


@pytest.mark.parametrize("type_", COLLECTIONS, ids=str)
@pytest.mark.parametrize("value", ["team", {"team": "ops"}, 12, None, True], ids=repr)
def test_a_collection_comes_from_an_array_only_never_a_string_taken_apart(type_: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="expected a list"):
        structure(value, type_)


@attrs.frozen
class _Paths:
    paths: list[str]
    names: frozenset[str] = frozenset()


@pytest.mark.parametrize("body", [{"paths": "src"}, {"paths": {"src": 1}}, {"paths": ["a"], "names": "ab"}], ids=repr)
def test_a_request_field_typed_as_a_list_refuses_a_string_naming_the_field(body: dict[str, Any]) -> None:
    with pytest.raises(WVSError) as raised:
        structure_request(body, _Paths)
    assert raised.value.code is ErrorCode.BAD_REQUEST
    message = raised.value.message
    assert "expected a list" in message and ("@ paths" in message or "@ names" in message)


def test_collections_keep_their_type_and_name_the_bad_item() -> None:
    assert structure(["team", "ops"], tuple[str, ...]) == ("team", "ops")
    assert structure(["a", "a"], frozenset[str]) == frozenset({"a"})
    assert structure_request({"paths": ["a", "b"], "names": ["x"]}, _Paths) == _Paths(["a", "b"], frozenset({"x"}))
    with pytest.raises(WVSError, match=r"paths\[1\]"):
        structure_request({"paths": ["a", 1]}, _Paths)
