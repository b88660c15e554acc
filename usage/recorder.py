"""Usage recording off the request path.

Views hand finished requests to `recorder().record(...)`, which only appends to an in-memory
buffer; a background thread writes the buffer with one bulk INSERT per second (or per 200 rows).
A crash can lose at most the last second of rows; `flush()` writes everything now (used at
shutdown and in tests).

Metering never stops on one bad row: when a batch fails, its rows are written one by one. A row
whose API key was deleted is written without it; a row that still fails is retried on the next
flushes, then parked (kept aside, logged, counted in `llmos_usage_rows_parked_total`) after
MAX_ROW_ATTEMPTS. While the database is unreachable rows wait in the buffer; past MAX_BUFFERED the
oldest are dropped (`llmos_usage_rows_dropped_total`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.models import DateTimeField
from django.utils import timezone

from usage import metrics
from usage.budgets import budget_usage_add

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
MAX_BATCH = 200
MAX_BUFFERED = 100_000  # beyond this (database down for long) the oldest rows are dropped
MAX_ROW_ATTEMPTS = 3  # a row that fails on its own this often is parked
MAX_PARKED = 1_000  # parked rows kept in memory for an operator to look at (all are logged)

# Errors that say "the database is unreachable", not "this row is bad": keep the rows and wait.
_UNREACHABLE = (OperationalError, InterfaceError)


@dataclass
class UsageEvent:
    user_id: int
    api_key_id: int | None
    model: str
    endpoint: str
    status_code: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    ttft_ms: int | None = None
    error_code: str = ""
    cached: bool = False
    streamed: bool = False
    client_disconnected: bool = False
    request_id: str = ""
    organization_id: int | None = None  # an organization's key: the organization is billed
    end_user: str = ""
    created_at: datetime = field(default_factory=timezone.now)
    attempts: int = field(default=0, compare=False)  # failed writes of this row on its own


def usage_row(event: UsageEvent):
    """The UsageRecord (unsaved) for one event."""
    from usage.models import UsageRecord

    values = asdict(event)
    values.pop("attempts")
    return UsageRecord(**values)


def _insert(events: list[UsageEvent]) -> None:
    """One INSERT executed for many rows of plain values. bulk_create spent ~0.4 ms a row building
    model instances and preparing every field of every row; here only datetimes need adapting.
    The columns come from the model, so a field added there that events lack fails loudly."""
    from usage.models import UsageRecord

    fields = [field for field in UsageRecord._meta.concrete_fields if not field.primary_key]
    ops = connection.ops
    adapt = [ops.adapt_datetimefield_value if isinstance(field, DateTimeField) else None for field in fields]
    columns = ", ".join(ops.quote_name(str(field.column)) for field in fields)
    sql = (
        f"INSERT INTO {ops.quote_name(UsageRecord._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    values = list(zip((field.attname for field in fields), adapt, strict=True))
    rows = [
        tuple(getattr(event, name) if convert is None else convert(getattr(event, name)) for name, convert in values)
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


class UsageRecorder:
    def __init__(self) -> None:
        self._buffer: deque[UsageEvent] = deque(maxlen=MAX_BUFFERED)
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.parked: deque[tuple[UsageEvent, str]] = deque(maxlen=MAX_PARKED)

    def record(self, event: UsageEvent) -> None:
        """Queue one row; never touches the database on the caller's thread."""
        if len(self._buffer) == MAX_BUFFERED:
            logger.error("usage buffer full; dropping the oldest row")
            metrics.USAGE_ROWS_DROPPED.inc()
        self._buffer.append(event)
        if not settings.USAGE_BACKGROUND_WRITES:
            return  # tests flush() explicitly, on their own database connection
        self._ensure_thread()
        if len(self._buffer) >= MAX_BATCH:
            self._wake.set()

    def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written."""
        written = 0
        with self._write_lock:
            while self._buffer:
                batch: list[UsageEvent] = []
                while self._buffer and len(batch) < MAX_BATCH:
                    batch.append(self._buffer.popleft())
                try:
                    with transaction.atomic():
                        _insert(batch)
                except _UNREACHABLE:
                    logger.exception("writing %d usage rows failed; will retry", len(batch))
                    self._buffer.extendleft(reversed(batch))
                    break
                except Exception:
                    logger.warning("a batch of %d usage rows failed; writing them one by one", len(batch))
                    done, retry, unreachable = self._write_one_by_one(batch)
                    written += len(done)
                    budget_usage_add(events=done)
                    self._buffer.extendleft(reversed(retry))
                    if unreachable or retry:
                        break  # the rest waits for the next flush
                    continue
                written += len(batch)
                budget_usage_add(events=batch)
        return written

    def _write_one_by_one(self, batch: list[UsageEvent]) -> tuple[list[UsageEvent], list[UsageEvent], bool]:
        """Write each row on its own: (rows written, rows to retry later, database unreachable)."""
        written: list[UsageEvent] = []
        retry: list[UsageEvent] = []
        for position, event in enumerate(batch):
            try:
                self._write_row(event)
            except _UNREACHABLE:
                logger.exception("the database is unreachable; usage rows wait in the buffer")
                return written, retry + batch[position:], True
            except Exception as exc:
                event.attempts += 1
                if event.attempts >= MAX_ROW_ATTEMPTS:
                    self._park(event, exc)
                else:
                    retry.append(event)
                continue
            written.append(event)
        return written, retry, False

    def _write_row(self, event: UsageEvent) -> None:
        try:
            with transaction.atomic():
                usage_row(event).save(force_insert=True)
        except IntegrityError:
            if event.api_key_id is None:
                raise
            # Most often the key was deleted while its entry was cached: keep the user's usage.
            event.api_key_id = None
            with transaction.atomic():
                usage_row(event).save(force_insert=True)
            metrics.USAGE_ROWS_REWRITTEN.inc()

    def _park(self, event: UsageEvent, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        logger.error(
            "parked a usage row after %d failed writes (user %s, key %s, %s, request %s): %s",
            event.attempts,
            event.user_id,
            event.api_key_id,
            event.endpoint,
            event.request_id,
            reason,
        )
        self.parked.append((event, reason))
        metrics.USAGE_ROWS_PARKED.inc()

    def discard(self) -> None:
        """Drop everything buffered (tests start clean)."""
        self._buffer.clear()
        self.parked.clear()

    def pending(self) -> int:
        return len(self._buffer)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_SECONDS)
            self._wake.clear()
            if self._buffer:
                try:
                    close_old_connections()
                    self.flush()
                except Exception:  # never let the writer thread die
                    logger.exception("usage writer: flush failed")


_recorder = UsageRecorder()


def recorder() -> UsageRecorder:
    return _recorder
