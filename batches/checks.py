"""System checks for batch jobs."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

from llmos_portal.checks import _worker_count


@register()
def check_batch_runner_with_many_workers(app_configs=None, **kwargs):
    if _worker_count() <= 1 or settings.BATCH_RUNNER != "thread":
        return []
    return [
        Warning(
            "Several workers run batch jobs in their own threads: each resumes every unfinished batch at "
            "start, and only one run keeps each batch (the others stop), so work is repeated.",
            hint="Set BROKER_URL and run `make worker` to run batch jobs on Celery workers.",
            id="batches.W001",
        )
    ]
