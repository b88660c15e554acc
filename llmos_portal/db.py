"""Database access from async code that runs outside Django's request cycle.

Django closes unusable or over-age connections when a request starts and ends (the
request_started / request_finished signals). Code that skips those signals (the lean /v1 handler,
see llmos_portal.api_handler) wraps its database calls in `db_sync_to_async`, which does the same
before and after each call, in the thread that owns the connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def close_stale_connections() -> None:
    """close_old_connections, except for a connection inside a transaction (never ours to close:
    a caller's atomic block, or a test's). Best effort: if a connection cannot even be checked,
    the next query on it reports the problem where it is handled (a 503 on the APIs)."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        try:
            connection.close_if_unusable_or_obsolete()
        except Exception:
            logger.debug("could not check database connection %r", connection.alias, exc_info=True)


def db_sync_to_async(func: Callable[P, R]):
    """sync_to_async for ORM work, with stale connections closed before and after the call."""

    @functools.wraps(func)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        close_stale_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_stale_connections()

    return sync_to_async(call)
