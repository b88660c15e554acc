"""Reads for files and batches; every read is scoped to its owner."""

from __future__ import annotations

from accounts.models import User
from batches.models import Batch, File


def file_for_user(*, user: User, file_id: str) -> File | None:
    return File.objects.filter(user=user, pk=file_id).first()


def files_for_user(*, user: User, purpose: str | None = None, limit: int = 100) -> list[File]:
    files = File.objects.filter(user=user).defer("content", "data")
    if purpose:
        files = files.filter(purpose=purpose)
    return list(files.order_by("-created_at")[:limit])


def batch_for_user(*, user: User, batch_id: str) -> Batch | None:
    return Batch.objects.filter(user=user, pk=batch_id).first()


def batches_for_user(*, user: User, after: str | None = None, limit: int = 20) -> tuple[list[Batch], bool]:
    """A page of the user's batches, newest first, after the batch `after`; and whether more follow."""
    batches = Batch.objects.filter(user=user).select_related("input_file").order_by("-created_at", "-pk")
    if after:
        anchor = Batch.objects.filter(user=user, pk=after).values_list("created_at", flat=True).first()
        if anchor is not None:
            batches = batches.filter(created_at__lt=anchor)
    page = list(batches[: limit + 1])
    return page[:limit], len(page) > limit


def active_batch_ids() -> list[str]:
    return list(Batch.objects.filter(status__in=Batch.ACTIVE).order_by("created_at").values_list("pk", flat=True))
