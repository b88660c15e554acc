"""Metering never stops: one row that can't be written doesn't block the others."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey
from tests.conftest import make_user
from usage import metrics
from usage import recorder as recorder_module
from usage.models import UsageRecord
from usage.recorder import MAX_ROW_ATTEMPTS, UsageEvent, recorder

pytestmark = pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit


def event(user_id: int, api_key_id: int | None = None, request_id: str = "") -> UsageEvent:
    return UsageEvent(
        user_id=user_id, api_key_id=api_key_id, model="m", endpoint="test", status_code=200, request_id=request_id
    )


def counter(metric) -> float:
    return metric._value.get()


def test_a_flushed_row_holds_every_field_of_its_event():
    """The batch INSERT is written by hand: every column, timestamps as aware datetimes."""
    user = make_user("all@example.com")
    api_key, _ = services.api_key_create(user=user, name="k")
    created = timezone.now() - timedelta(days=3, microseconds=17)
    full = UsageEvent(
        user_id=user.pk,
        api_key_id=api_key.pk,
        model="big-model",
        endpoint="/v1/chat/completions",
        status_code=499,
        prompt_tokens=12,
        completion_tokens=34,
        latency_ms=56,
        ttft_ms=7,
        error_code="client_disconnected",
        cached=True,
        streamed=True,
        client_disconnected=True,
        request_id="every-field",
        end_user="user-42",
        created_at=created,
    )
    recorder().record(full)
    recorder().record(event(user.pk, None, "defaults"))
    assert recorder().flush() == 2
    row = UsageRecord.objects.get(request_id="every-field")
    expected = asdict(full)
    expected.pop("attempts")
    assert {name: getattr(row, name) for name in expected} == expected
    plain = UsageRecord.objects.get(request_id="defaults")
    assert (plain.ttft_ms, plain.api_key_id, plain.organization_id, plain.cached) == (None, None, None, False)


def test_a_row_whose_key_was_deleted_is_written_without_it():
    user = make_user("a@example.com")
    api_key, _ = services.api_key_create(user=user, name="gone")
    key_id = api_key.pk
    ApiKey.objects.filter(pk=key_id).delete()
    recorder().record(event(user.pk, key_id, "r1"))
    recorder().record(event(user.pk, None, "r2"))
    recorder().flush()
    rows = list(UsageRecord.objects.order_by("request_id").values_list("request_id", "user_id", "api_key_id"))
    assert rows == [("r1", user.pk, None), ("r2", user.pk, None)]
    assert recorder().pending() == 0


def test_a_bad_row_is_parked_with_a_log_line_and_the_rest_are_written(caplog):
    user = make_user("b@example.com")
    before = counter(metrics.USAGE_ROWS_PARKED)
    recorder().record(event(user.pk, None, "good-1"))
    recorder().record(event(987_654, None, "bad"))  # no such user
    recorder().record(event(user.pk, None, "good-2"))
    with caplog.at_level(logging.ERROR, logger="usage.recorder"):
        for _ in range(MAX_ROW_ATTEMPTS):  # retries are capped
            recorder().flush()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["good-1", "good-2"]
    assert recorder().pending() == 0
    assert [parked.request_id for parked, _ in recorder().parked] == ["bad"]
    assert counter(metrics.USAGE_ROWS_PARKED) == before + 1
    assert "parked a usage row" in caplog.text
    # later rows keep flowing
    recorder().record(event(user.pk, None, "good-3"))
    recorder().flush()
    assert UsageRecord.objects.filter(request_id="good-3").exists()


def test_rows_wait_while_the_database_is_unreachable(monkeypatch):
    user = make_user("c@example.com")
    recorder().record(event(user.pk, None, "waits"))

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(recorder_module, "_insert", down)
    assert recorder().flush() == 0 and recorder().pending() == 1 and not recorder().parked
    monkeypatch.undo()
    assert recorder().flush() == 1


def test_an_overflowing_buffer_counts_dropped_rows(monkeypatch):
    monkeypatch.setattr(recorder_module, "MAX_BUFFERED", 2)
    small = recorder_module.UsageRecorder()
    monkeypatch.setattr(small, "_buffer", recorder_module.deque(maxlen=2))
    before = counter(metrics.USAGE_ROWS_DROPPED)
    for i in range(3):
        small.record(event(1, None, f"r{i}"))
    assert counter(metrics.USAGE_ROWS_DROPPED) == before + 1 and small.pending() == 2


def test_the_counters_are_on_the_metrics_page():
    page = metrics.exposition().decode()
    assert "llmos_usage_rows_parked_total" in page and "llmos_usage_rows_dropped_total" in page
