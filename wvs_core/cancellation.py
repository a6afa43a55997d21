"""Cooperative cancellation of executor ops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class OpCanceled(Exception):
    """The task's cancellation was requested and the op stopped at a safe point, leaving nothing half-made."""


async def finish_in_thread(func: Callable[..., T], *args: object, stop: threading.Event | None = None) -> T:
    """``func(*args)`` in a thread. When the caller is cancelled, set ``stop`` (a flag ``func`` may watch to
    end early), wait until the thread has ended, then raise CancelledError: the caller's clean-up never
    races a thread still writing (``asyncio.to_thread`` alone raises at once and lets the thread run on)."""
    running = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        if stop is not None:
            stop.set()
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([running])
        running.exception()  # mark its failure seen (no "never retrieved" log): the caller hears of the cancel
        raise


async def acquire_in_thread(func: Callable[..., T], *args: object, release: Callable[[T], None]) -> T:
    """``func(*args)`` in a thread, for something the caller must let go of (a lock, descriptors). When the
    caller is cancelled meanwhile, wait until the thread has ended, ``release`` what it acquired, then raise
    CancelledError: a cancellation never leaks what the thread took (``asyncio.to_thread`` alone would)."""
    running = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([running])
        if running.exception() is None:
            release(running.result())
        raise
