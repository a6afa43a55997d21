"""Cooperative cancellation of executor ops."""


class OpCanceled(Exception):
    """The task's cancellation was requested and the op stopped at a safe point, leaving nothing half-made."""
