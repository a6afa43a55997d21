"""Reading an op's params on the executor side."""

from __future__ import annotations

from typing import TypeVar

from wvs_core.convert import describe_error, structure
from wvs_core.ops import ExecutionContext, OpFailed

T = TypeVar("T")


def parse_params(ctx: ExecutionContext, cls: type[T]) -> T:
    """Structure ``ctx.params`` as ``cls``; bad params fail the task for good (``INVALID_PARAMS``)."""
    try:
        return structure(dict(ctx.params), cls)
    except Exception as error:
        raise OpFailed("INVALID_PARAMS", describe_error(error), retryable=False) from None
