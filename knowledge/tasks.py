"""Celery task: ingest one knowledge base document (knowledge.ingest) on a worker."""

from __future__ import annotations

import logging

from batches.celery import app

logger = logging.getLogger(__name__)


@app.task(name="knowledge.ingest_document", bind=True, max_retries=None)
def ingest_document(self, document_id: int) -> None:
    from django.db import close_old_connections

    from batches.tasks import run_async
    from knowledge.ingest import document_ingest

    close_old_connections()
    try:
        run_async(document_ingest(document_id=document_id))
    except Exception as exc:  # the database or the engine went away: try again shortly
        logger.exception("document %s: ingestion failed; retrying", document_id)
        raise self.retry(exc=exc, countdown=5) from exc
    finally:
        close_old_connections()
