"""The Celery app that runs batch jobs: `celery -A batches.celery worker` (`make worker`).

Messages are acknowledged only when a job has run (acks_late), and a worker that dies mid-job
gives its message back (reject_on_worker_lost): with RabbitMQ another worker, or the restarted
one, gets it at once; with Redis after `BATCH_VISIBILITY_TIMEOUT`. The job picks up where the
dead one stopped (batches.runner).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmos_portal.settings")

app = Celery("llmos")


def _configure() -> None:
    from django.conf import settings

    app.conf.update(
        broker_url=settings.BROKER_URL or "memory://",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.BATCH_VISIBILITY_TIMEOUT},
        task_default_queue=settings.BATCH_QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        imports=["batches.tasks", "knowledge.tasks"],
    )


_configure()
