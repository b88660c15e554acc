"""Usage recording off the request path.

Views hand finished requests to `recorder().record(...)`, which only appends to an in-memory
buffer; a background thread writes the buffer with one bulk INSERT per second (or per 200 rows).
A crash can lose at most the last second of rows; `flush()` writes everything now (used at
shutdown and in tests).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
MAX_BATCH = 200
MAX_BUFFERED = 100_000  # beyond this (database down for long) the oldest rows are dropped


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
    created_at: datetime = field(default_factory=timezone.now)


class UsageRecorder:
    def __init__(self) -> None:
        self._buffer: deque[UsageEvent] = deque(maxlen=MAX_BUFFERED)
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def record(self, event: UsageEvent) -> None:
        """Queue one row; never touches the database on the caller's thread."""
        if len(self._buffer) == MAX_BUFFERED:
            logger.error("usage buffer full; dropping the oldest row")
        self._buffer.append(event)
        if not settings.USAGE_BACKGROUND_WRITES:
            return  # tests flush() explicitly, on their own database connection
        self._ensure_thread()
        if len(self._buffer) >= MAX_BATCH:
            self._wake.set()

    def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written."""
        from usage.models import UsageRecord

        written = 0
        with self._write_lock:
            while self._buffer:
                batch: list[UsageEvent] = []
                while self._buffer and len(batch) < MAX_BATCH:
                    batch.append(self._buffer.popleft())
                try:
                    UsageRecord.objects.bulk_create([UsageRecord(**asdict(event)) for event in batch])
                except Exception:
                    logger.exception("writing %d usage rows failed; will retry", len(batch))
                    self._buffer.extendleft(reversed(batch))
                    break
                written += len(batch)
        return written

    def discard(self) -> None:
        """Drop everything buffered (tests start clean)."""
        self._buffer.clear()

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
                close_old_connections()
                self.flush()


_recorder = UsageRecorder()


def recorder() -> UsageRecorder:
    return _recorder
