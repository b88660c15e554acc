"""Writes for files and batches: upload and validate a JSONL file, create, cancel and finalize a
batch, and the per-line steps the runner takes (claim, complete) in their own transactions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import ApiKey, User
from batches.models import Batch, BatchLine, File
from inference.serializers import ChatCompletionSerializer, CompletionSerializer, EmbeddingSerializer
from usage.budgets import budget_usage_add
from usage.recorder import UsageEvent, usage_row

# What a batch line may call, and the serializer its body must pass.
ENDPOINTS = {
    "/v1/chat/completions": ChatCompletionSerializer,
    "/v1/completions": CompletionSerializer,
    "/v1/embeddings": EmbeddingSerializer,
}
COMPLETION_WINDOWS = {"24h": timedelta(hours=24)}
MAX_REPORTED_ERRORS = 10


class BatchInputError(Exception):
    """A file or batch request that cannot be accepted; `errors` are (line number, message)."""

    def __init__(self, message: str, *, param: str | None = None, errors: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.errors = errors or []


@dataclass(frozen=True)
class InputLine:
    custom_id: str
    url: str
    body: dict


def _check_line(number: int, raw: str, seen: set[str]) -> InputLine:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        raise ValueError("'custom_id' must be a non-empty string of at most 512 characters")
    if custom_id in seen:
        raise ValueError(f"'custom_id' {custom_id!r} is used by an earlier line")
    if data.get("method") != "POST":
        raise ValueError("'method' must be \"POST\"")
    url = data.get("url")
    if url not in ENDPOINTS:
        raise ValueError(f"'url' must be one of {', '.join(ENDPOINTS)}")
    body = data.get("body")
    if not isinstance(body, dict):
        raise ValueError("'body' must be a JSON object")
    if body.get("stream"):
        raise ValueError("'body.stream' must be false: batch answers are not streamed")
    serializer = ENDPOINTS[url](data=body)
    if not serializer.is_valid():
        field, problems = next(iter(serializer.errors.items()))
        detail = problems[0] if isinstance(problems, list) and problems else problems
        raise ValueError(f"'body.{field}': {detail}")
    seen.add(custom_id)
    return InputLine(custom_id=custom_id, url=url, body=body)


def parse_batch_input(text: str) -> list[InputLine]:
    """Every line of a batch input file, or BatchInputError listing the first bad lines."""
    lines: list[InputLine] = []
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            lines.append(_check_line(number, raw, seen))
        except ValueError as exc:
            errors.append((number, str(exc)))
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    if errors:
        listed = "; ".join(f"line {number}: {message}" for number, message in errors)
        raise BatchInputError(f"The file is not a valid batch input: {listed}", param="file", errors=errors)
    if not lines:
        raise BatchInputError("The file has no requests.", param="file")
    if len(lines) > settings.BATCH_MAX_LINES:
        raise BatchInputError(f"A batch holds at most {settings.BATCH_MAX_LINES} requests.", param="file")
    return lines


def file_create(*, user: User, filename: str, purpose: str, data: bytes) -> File:
    """Store an uploaded file; a `batch` file must be UTF-8 JSONL whose every line is a valid
    request; an `assistants` file is a document for knowledge bases (text, Markdown, HTML, PDF)."""
    if purpose == File.Purpose.ASSISTANTS:
        return _document_file_create(user=user, filename=filename, data=data)
    if purpose != File.Purpose.BATCH:
        raise BatchInputError("'purpose' must be 'batch' or 'assistants'.", param="purpose")
    if len(data) > settings.BATCH_FILE_MAX_BYTES:
        raise BatchInputError(f"The file is larger than {settings.BATCH_FILE_MAX_BYTES} bytes.", param="file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchInputError("The file must be UTF-8 encoded JSONL.", param="file") from exc
    lines = parse_batch_input(text)
    return File.objects.create(
        user=user,
        filename=filename[:255] or "batch.jsonl",
        purpose=purpose,
        bytes=len(data),
        content=text,
        line_count=len(lines),
    )


def _document_file_create(*, user: User, filename: str, data: bytes) -> File:
    """A document for knowledge bases, within the file size limit and the plan's storage quota."""
    from accounts.selectors import user_with_plan
    from knowledge.parsing import SUPPORTED, is_supported
    from knowledge.selectors import assistants_bytes_for_user

    if not data:
        raise BatchInputError("The file is empty.", param="file")
    if len(data) > settings.KNOWLEDGE_FILE_MAX_BYTES:
        raise BatchInputError(f"The file is larger than {settings.KNOWLEDGE_FILE_MAX_BYTES} bytes.", param="file")
    if not is_supported(filename, data):
        raise BatchInputError(f"Unsupported file type: use one of {', '.join(SUPPORTED)}.", param="file")
    with transaction.atomic():
        # One upload at a time per user, so two cannot both fit in the last of the quota.
        owner = user_with_plan(user_id=user.pk)
        User.objects.select_for_update().filter(pk=user.pk).first()
        quota = owner.plan.knowledge_max_bytes if owner.plan is not None else 0
        used = assistants_bytes_for_user(user=user)
        if used + len(data) > quota:
            raise BatchInputError(
                f"Your plan allows {quota} bytes of documents; {used} are used and this file has {len(data)}."
                " Delete documents to make room.",
                param="file",
            )
        return File.objects.create(
            user=user,
            filename=filename[:255] or "document.txt",
            purpose=File.Purpose.ASSISTANTS,
            bytes=len(data),
            data=data,
        )


def file_delete(*, file: File) -> None:
    """Delete a file, unless it is the input of a batch that is still running."""
    if Batch.objects.filter(input_file=file, status__in=Batch.ACTIVE).exists():
        raise BatchInputError("The file is the input of a batch that has not finished.", param="file_id")
    file.delete()


@transaction.atomic
def batch_create(
    *,
    user: User,
    api_key: ApiKey | None,
    input_file: File,
    endpoint: str,
    completion_window: str,
    metadata: dict | None = None,
) -> Batch:
    """A batch of the file's lines, all for `endpoint`; the runner is started once this commits."""
    if input_file.user_id != user.pk or input_file.purpose != File.Purpose.BATCH:
        raise BatchInputError(f"No such file: {input_file.pk}", param="input_file_id")
    if endpoint not in ENDPOINTS:
        raise BatchInputError(f"'endpoint' must be one of {', '.join(ENDPOINTS)}", param="endpoint")
    if completion_window not in COMPLETION_WINDOWS:
        raise BatchInputError("'completion_window' must be \"24h\".", param="completion_window")
    lines = parse_batch_input(input_file.content)
    wrong = [number for number, line in enumerate(lines, start=1) if line.url != endpoint]
    if wrong:
        raise BatchInputError(f"Line {wrong[0]} calls another endpoint than {endpoint}.", param="input_file_id")
    now = timezone.now()
    batch = Batch.objects.create(
        user=user,
        api_key=api_key,
        input_file=input_file,
        endpoint=endpoint,
        completion_window=completion_window,
        metadata=metadata,
        total=len(lines),
        created_at=now,
        expires_at=now + COMPLETION_WINDOWS[completion_window],
    )
    BatchLine.objects.bulk_create(
        BatchLine(batch=batch, index=index, custom_id=line.custom_id, body=line.body)
        for index, line in enumerate(lines)
    )
    transaction.on_commit(lambda: _enqueue(batch.pk))
    return batch


def _enqueue(batch_id: str) -> None:
    from batches import dispatch

    dispatch.batch_enqueue(batch_id=batch_id)


def batch_cancel(*, batch: Batch) -> Batch:
    """Ask the batch's run to stop: lines not yet run are never run; the run then ends it as
    `cancelled` (at its next line, or when it reaches the batch if it has not started)."""
    if batch.status in (Batch.Status.CANCELLING, Batch.Status.CANCELLED):
        return batch
    if batch.status not in (Batch.Status.VALIDATING, Batch.Status.IN_PROGRESS):
        raise BatchInputError(f"Cannot cancel a batch with status {batch.status}.")
    now = timezone.now()
    updated = Batch.objects.filter(pk=batch.pk, status__in=[Batch.Status.VALIDATING, Batch.Status.IN_PROGRESS]).update(
        status=Batch.Status.CANCELLING, cancelling_at=now
    )
    if not updated:
        raise BatchInputError("The batch finished before it could be cancelled.")
    batch.refresh_from_db()
    return batch


# --- the runner's steps (batches.runner), each in one transaction ------------------------------------


def batch_run_start(*, batch_id: str, run_id: str) -> Batch | None:
    """Take the batch over for this run; lines a dead run left `running` are pending again.
    None when there is nothing to run (unknown or finished batch)."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or not batch.is_active:
            return None
        if batch.status == Batch.Status.VALIDATING:
            batch.status, batch.in_progress_at = Batch.Status.IN_PROGRESS, timezone.now()
        batch.run_id = run_id
        batch.save(update_fields=["status", "in_progress_at", "run_id"])
        batch.lines.filter(state=BatchLine.State.RUNNING).update(state=BatchLine.State.PENDING)
    return batch


def batch_line_claim(*, batch_id: str, run_id: str) -> BatchLine | None:
    """The next pending line, now `running` for this run; None when no line is left or the
    batch is no longer this run's."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.run_id != run_id or batch.status != Batch.Status.IN_PROGRESS:
            return None
        if batch.expires_at is not None and timezone.now() >= batch.expires_at:
            return None  # past its completion window: finalized as expired
        line = batch.lines.filter(state=BatchLine.State.PENDING).order_by("index").first()
        if line is None:
            return None
        line.state, line.run_id, line.attempts = BatchLine.State.RUNNING, run_id, line.attempts + 1
        line.request_id = f"{batch.pk}-{line.index}"
        line.save(update_fields=["state", "run_id", "attempts", "request_id"])
    return line


def batch_line_complete(
    *, line_id: int, run_id: str, status_code: int, response: dict, usage: UsageEvent | None
) -> bool:
    """Store a line's answer and its usage row together, once. False (nothing written, nothing
    billed) when the line is no longer this run's."""
    with transaction.atomic():
        line = BatchLine.objects.select_for_update().get(pk=line_id)
        if line.state != BatchLine.State.RUNNING or line.run_id != run_id:
            return False
        done = status_code == 200
        line.state = BatchLine.State.DONE if done else BatchLine.State.FAILED
        line.status_code, line.response, line.finished_at = status_code, response, timezone.now()
        line.save(update_fields=["state", "status_code", "response", "finished_at"])
        if usage is not None:
            usage_row(usage).save()
            transaction.on_commit(lambda: budget_usage_add(events=[usage]))
        counter = "completed" if done else "failed"
        Batch.objects.filter(pk=line.batch_id).update(**{counter: F(counter) + 1})
    return True


def _output_line(line: BatchLine) -> dict:
    return {
        "id": f"batch_req_{line.batch_id.removeprefix('batch_')}_{line.index}",
        "custom_id": line.custom_id,
        "response": {"status_code": line.status_code, "request_id": line.request_id, "body": line.response},
        "error": None,
    }


def _unrun_line(line: BatchLine, code: str, message: str) -> dict:
    return {
        "id": f"batch_req_{line.batch_id.removeprefix('batch_')}_{line.index}",
        "custom_id": line.custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


def batch_finalize(*, batch_id: str, run_id: str) -> Batch | None:
    """Write the output and error files and end the batch: `completed`, or `cancelled` when it was
    being cancelled (its unrun lines go to the error file). None when not this run's batch."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.run_id != run_id or batch.status not in (Batch.Status.IN_PROGRESS, Batch.Status.CANCELLING):
            return None
        cancelled = batch.status == Batch.Status.CANCELLING
        now = timezone.now()
        unrun = batch.lines.filter(state__in=[BatchLine.State.PENDING, BatchLine.State.RUNNING]).exists()
        expired = not cancelled and unrun and batch.expires_at is not None and now >= batch.expires_at
        batch.finalizing_at = now
        outputs, errors = [], []
        for line in batch.lines.order_by("index"):
            if line.state == BatchLine.State.DONE:
                outputs.append(_output_line(line))
            elif line.state == BatchLine.State.FAILED:
                errors.append(_output_line(line))
            elif expired:
                errors.append(_unrun_line(line, "batch_expired", "The batch expired before this request ran."))
            else:
                errors.append(_unrun_line(line, "batch_cancelled", "The batch was cancelled before this request ran."))
        for rows, attr, name in ((outputs, "output_file", "output"), (errors, "error_file", "errors")):
            if rows:
                content = _jsonl(rows)
                setattr(
                    batch,
                    attr,
                    File.objects.create(
                        user_id=batch.user_id,
                        filename=f"{batch.pk}_{name}.jsonl",
                        purpose=File.Purpose.BATCH_OUTPUT,
                        bytes=len(content.encode()),
                        content=content,
                        line_count=len(rows),
                    ),
                )
        if cancelled:
            batch.status, batch.cancelled_at = Batch.Status.CANCELLED, now
        elif expired:
            batch.status, batch.expired_at = Batch.Status.EXPIRED, now
        else:
            batch.status, batch.completed_at = Batch.Status.COMPLETED, now
        batch.save()
    return batch
