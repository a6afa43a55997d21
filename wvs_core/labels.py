"""Snapshot labels (SPEC §2): at most 16 ``key: value`` pairs given at creation, keys
``^[a-z0-9][a-z0-9_.-]{0,62}$``, values strings of at most 256 characters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_LABELS = 16
MAX_VALUE_LENGTH = 256
KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def check_key(key: str) -> None:
    """ValueError naming ``key`` unless it is a label key."""
    if not KEY.fullmatch(key):
        raise ValueError(f"label key {key!r} must match ^[a-z0-9][a-z0-9_.-]{{0,62}}$")


def check_labels(labels: Mapping[str, Any]) -> None:
    """ValueError naming the first problem: more than 16 labels, a bad key, a value that is not a string of
    at most 256 characters."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        check_key(key)
        if not isinstance(value, str):
            raise ValueError(f"the value of label {key!r} must be a string")
        if len(value) > MAX_VALUE_LENGTH:
            raise ValueError(f"the value of label {key!r} is longer than {MAX_VALUE_LENGTH} characters")


def parse_filter(text: str) -> tuple[str, str]:
    """``key=value`` (the ``?label=`` filter of the snapshot list) as ``(key, value)``; ValueError saying why
    not. The value may be empty and may contain ``=``."""
    key, has_value, value = text.partition("=")
    if not has_value:
        raise ValueError(f"label filter {text!r} must be key=value")
    check_key(key)
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"the value of label filter {key!r} is longer than {MAX_VALUE_LENGTH} characters")
    return key, value
