"""Celery tasks: run one batch (batches.runner) on the worker's event loop."""

from __future__ import annotations

import asyncio
import logging

from batches.celery import app

logger = logging.getLogger(__name__)

_loop: asyncio.AbstractEventLoop | None = None


def run_async(coroutine):
    """Run on this process's one event loop (the model engine's requests are tied to a loop)."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coroutine)


@app.task(name="batches.run_batch", bind=True, max_retries=None)
def run_batch(self, batch_id: str) -> None:
    from django.db import close_old_connections

    from batches.runner import batch_run

    close_old_connections()
    try:
        run_async(batch_run(batch_id=batch_id))
    except Exception as exc:  # the database or the engine went away: try again shortly
        logger.exception("batch %s: run failed; retrying", batch_id)
        raise self.retry(exc=exc, countdown=5) from exc
    finally:
        close_old_connections()
