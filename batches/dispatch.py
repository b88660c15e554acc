"""Where batch jobs (and knowledge base document ingestion) run: on Celery workers when BROKER_URL
is set (`make worker`), else on a background thread of the server process, so `make run` alone
runs them (BATCH_RUNNER overrides: `celery`, `thread`, or `off` for tests that drive the runner
themselves)."""

from __future__ import annotations

import logging
import queue
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_jobs: queue.Queue[tuple[str, str]] = queue.Queue()  # (kind, id): ("batch", id) or ("document", id)
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def batch_enqueue(*, batch_id: str) -> None:
    runner = settings.BATCH_RUNNER
    if runner == "celery":
        from batches.tasks import run_batch

        run_batch.apply_async(args=[batch_id])
    elif runner == "thread":
        _ensure_thread()
        _jobs.put(("batch", batch_id))


def document_enqueue(*, document_id: int) -> None:
    """Ingest a knowledge base document (knowledge.ingest) off the request path."""
    runner = settings.BATCH_RUNNER
    if runner == "celery":
        from knowledge.tasks import ingest_document

        ingest_document.apply_async(args=[document_id])
    elif runner == "thread":
        _ensure_thread()
        _jobs.put(("document", str(document_id)))


def resume_active_batches() -> int:
    """At server start (thread runner): queue every unfinished batch and document again; they
    resume where they stopped. With Celery the broker redelivers them instead."""
    if settings.BATCH_RUNNER != "thread":
        return 0
    from batches.selectors import active_batch_ids
    from knowledge.selectors import unfinished_document_ids

    ids = active_batch_ids()
    for batch_id in ids:
        batch_enqueue(batch_id=batch_id)
    documents = unfinished_document_ids()
    for document_id in documents:
        document_enqueue(document_id=document_id)
    return len(ids) + len(documents)


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
    from knowledge.ingest import document_ingest

    while True:
        kind, job_id = _jobs.get()
        close_old_connections()
        try:
            if kind == "document":
                run_async(document_ingest(document_id=int(job_id)))
            else:
                run_async(batch_run(batch_id=job_id))
        except Exception:
            logger.exception("%s %s: run failed", kind, job_id)
        finally:
            close_old_connections()
