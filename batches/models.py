"""Files (uploaded JSONL inputs, generated outputs) and batch jobs with one row per input line.

A line's result and its usage row are written in one transaction, and only by the run that owns
the batch, so a line is billed once and never lost when a worker dies mid-batch.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise as _StrPromise


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


class File(models.Model):
    class Purpose(models.TextChoices):
        BATCH = "batch"
        BATCH_OUTPUT = "batch_output"
        ASSISTANTS = "assistants"  # a document for knowledge bases (vector stores)

    id = models.CharField(primary_key=True, max_length=40, default=new_file_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=255)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    bytes = models.PositiveBigIntegerField(default=0)
    content = models.TextField(blank=True)  # JSONL; in the database so every worker and host reads it
    data = models.BinaryField(null=True, blank=True)  # `assistants` files: the bytes as uploaded (PDF, ...)
    line_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} {self.filename}"


class Batch(models.Model):
    class Status(models.TextChoices):
        VALIDATING = "validating"
        FAILED = "failed"
        IN_PROGRESS = "in_progress"
        FINALIZING = "finalizing"
        COMPLETED = "completed"
        EXPIRED = "expired"
        CANCELLING = "cancelling"
        CANCELLED = "cancelled"

    ACTIVE = (Status.VALIDATING, Status.IN_PROGRESS, Status.FINALIZING, Status.CANCELLING)

    id = models.CharField(primary_key=True, max_length=40, default=new_batch_id, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.SET_NULL, null=True, related_name="batches")
    # Deleting an input file is refused while its batch runs (batches.services.file_delete).
    input_file = models.ForeignKey(File, on_delete=models.SET_NULL, null=True, related_name="input_of")
    output_file = models.ForeignKey(File, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error_file = models.ForeignKey(File, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    endpoint = models.CharField(max_length=64)
    completion_window = models.CharField(max_length=16, default="24h")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALIDATING)
    metadata = models.JSONField(null=True, blank=True)
    errors = models.JSONField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    run_id = models.CharField(max_length=32, blank=True)  # the run that owns the lines now
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"

    @property
    def status_label(self) -> str:
        """The status as the pages show it, in the page's language (the API keeps OpenAI's words)."""
        label = BATCH_STATUS_LABELS.get(self.status)
        return str(label) if label is not None else self.status

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def progress_percent(self) -> int:
        return int(100 * (self.completed + self.failed) / self.total) if self.total else 0


class BatchLine(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"  # answered 200
        FAILED = "failed"  # answered an error

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="lines")
    index = models.PositiveIntegerField()
    custom_id = models.CharField(max_length=512)
    body = models.JSONField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    run_id = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    request_id = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)  # the response body (or error body)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="batch_line_index_unique"),
            models.UniqueConstraint(fields=["batch", "custom_id"], name="batch_line_custom_id_unique"),
        ]
        indexes = [models.Index(fields=["batch", "state"])]

    def __str__(self) -> str:
        return f"{self.batch_id}#{self.index} {self.state}"


BATCH_STATUS_LABELS: dict[str, _StrPromise] = {
    Batch.Status.VALIDATING: _("validating"),
    Batch.Status.FAILED: _("failed"),
    Batch.Status.IN_PROGRESS: _("in progress"),
    Batch.Status.FINALIZING: _("finalizing"),
    Batch.Status.COMPLETED: _("completed"),
    Batch.Status.EXPIRED: _("expired"),
    Batch.Status.CANCELLING: _("cancelling"),
    Batch.Status.CANCELLED: _("cancelled"),
}
