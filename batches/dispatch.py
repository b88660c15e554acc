"""Where batch jobs run: on Celery workers when BROKER_URL is set (`make worker`), else on a
background thread of the server process, so `make run` alone runs them (BATCH_RUNNER overrides:
`celery`, `thread`, or `off` for tests that drive the runner themselves)."""

from __future__ import annotations

import logging
import queue
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_jobs: queue.Queue[str] = queue.Queue()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def batch_enqueue(*, batch_id: str) -> None:
    runner = settings.BATCH_RUNNER
    if runner == "celery":
        from batches.tasks import run_batch

        run_batch.apply_async(args=[batch_id])
    elif runner == "thread":
        _ensure_thread()
        _jobs.put(batch_id)


def resume_active_batches() -> int:
    """At server start (thread runner): queue every unfinished batch again; they resume where
    they stopped. With Celery the broker redelivers them instead."""
    if settings.BATCH_RUNNER != "thread":
        return 0
    from batches.selectors import active_batch_ids

    ids = active_batch_ids()
    for batch_id in ids:
        batch_enqueue(batch_id=batch_id)
    return len(ids)


def _ensure_thread() -> None:
    global _thread
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work, name="batch-runner", daemon=True)
            _thread.start()


def _work() -> None:
    from django.db import close_old_connections

    from batches.runner import batch_run
    from batches.tasks import run_async

    while True:
        batch_id = _jobs.get()
        close_old_connections()
        try:
            run_async(batch_run(batch_id=batch_id))
        except Exception:
            logger.exception("batch %s: run failed", batch_id)
        finally:
            close_old_connections()
