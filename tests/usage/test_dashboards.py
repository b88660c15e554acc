"""Usage pages, CSV export, the usage API and the operators' overview: numbers and isolation."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from usage.models import UsageRecord


def add_usage(
    user,
    *,
    key=None,
    model="SmolLM2-135M-Instruct",
    days_ago=0,
    prompt=10,
    completion=5,
    status=200,
    latency=100,
    endpoint="chat.completions",
):
    return UsageRecord.objects.create(
        user=user,
        api_key=key,
        model=model,
        endpoint=endpoint,
        prompt_tokens=prompt,
        completion_tokens=completion,
        status_code=status,
        latency_ms=latency,
        ttft_ms=latency // 4,
        request_id=f"req_{UsageRecord.objects.count()}",
        created_at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def owner_usage(owner):
    key, _ = services.api_key_create(user=owner, name="prod")
    add_usage(owner, key=key, days_ago=0, latency=100)
    add_usage(owner, key=key, days_ago=1, prompt=20, completion=10, latency=300)
    add_usage(owner, key=None, model="all-MiniLM-L6-v2", endpoint="embeddings", completion=0, latency=50)
    add_usage(owner, key=key, status=429, prompt=0, completion=0, latency=1)
    add_usage(owner, key=key, days_ago=40)  # outside the default 30 days
    return key


@pytest.fixture
def other_usage(other_user):
    key, _ = services.api_key_create(user=other_user, name="secret-project")
    add_usage(other_user, key=key, model="other-model", prompt=999, completion=999)
    return key


def test_usage_page_shows_totals_breakdowns_and_daily_table(owner_client, owner_usage, other_usage):
    response = owner_client.get("/console/usage/")
    assert response.status_code == 200
    context = response.context
    assert context["totals"]["requests"] == 4
    assert context["totals"]["total_tokens"] == 15 + 30 + 10
    assert context["totals"]["errors"] == 1
    assert len(context["daily"]) == 30 and context["daily"][-1]["requests"] == 3
    assert {row["model"] for row in context["by_model"]} == {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"}
    assert {row["api_key_name"] for row in context["by_key"]} == {"prod", "(no key: playground)"}
    assert context["latency"]["latency_p50_ms"] == 100
    page = response.content.decode()
    assert 'id="daily-table"' in page and 'id="usage-data"' in page
    assert "secret-project" not in page and "other-model" not in page and "999" not in page


def test_usage_page_filters_the_recent_table(owner_client, owner_usage):
    response = owner_client.get("/console/usage/", {"status": "error"})
    rows = list(response.context["recent"])
    assert [row.status_code for row in rows] == [429]
    response = owner_client.get("/console/usage/", {"model": "all-MiniLM-L6-v2"})
    assert [row.endpoint for row in response.context["recent"]] == ["embeddings"]


def test_bad_date_range_is_a_form_error(owner_client, owner_usage):
    response = owner_client.get("/console/usage/", {"start": "2026-05-01", "end": "2026-04-01"})
    assert response.status_code == 400 and "must not be after" in response.content.decode()
    response = owner_client.get("/console/usage/", {"start": "not-a-date"})
    assert response.status_code == 400


def test_other_users_key_is_not_a_filter_choice(owner_client, owner_usage, other_usage):
    response = owner_client.get("/console/usage/", {"key": other_usage.pk})
    assert response.status_code == 400  # not one of the owner's keys


def test_csv_export_contains_only_the_users_rows_in_range(owner_client, owner_usage, other_usage):
    response = owner_client.get("/console/usage/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    assert {row["model"] for row in rows} == {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"}
    assert all(row["prompt_tokens"] != "999" for row in rows)
    start = (timezone.now() - timedelta(days=45)).date().isoformat()
    wide = owner_client.get("/console/usage/export.csv", {"start": start})
    assert len(list(csv.DictReader(io.StringIO(b"".join(wide.streaming_content).decode())))) == 5


def test_usage_pages_need_login(client, db):
    assert client.get("/console/usage/").status_code == 302
    assert client.get("/console/usage/export.csv").status_code == 302


def test_usage_api_groups_by_day_model_and_key(owner_api, owner_usage, other_usage):
    by_day = owner_api.get("/api/usage/").json()
    assert by_day["group_by"] == "day" and len(by_day["data"]) == 30
    assert by_day["totals"]["requests"] == 4 and by_day["totals"]["total_tokens"] == 55
    by_model = owner_api.get("/api/usage/", {"group_by": "model"}).json()
    assert {row["key"]: row["requests"] for row in by_model["data"]} == {
        "SmolLM2-135M-Instruct": 3,
        "all-MiniLM-L6-v2": 1,
    }
    by_key = owner_api.get("/api/usage/", {"group_by": "key"}).json()
    assert "secret-project" not in {row["key"] for row in by_key["data"]}


def test_usage_api_validates_and_needs_auth(owner_api, db):
    assert owner_api.get("/api/usage/", {"group_by": "colour"}).status_code == 400
    assert owner_api.get("/api/usage/", {"start": "2026-02-01", "end": "2025-01-01"}).status_code == 400
    assert APIClient().get("/api/usage/").status_code == 401


def test_usage_api_is_in_the_schema(client, db):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "/api/usage/" in paths


def test_operator_overview_lists_top_users_models_and_error_rates(client, operator, owner_usage, other_usage):
    client.force_login(operator)
    response = client.get("/console/operators/usage/")
    assert response.status_code == 200
    top = response.context["top_users"]
    assert top[0]["user__email"] == "other@example.com"  # 1998 tokens beats 55
    models = {row["model"]: row for row in response.context["models"]}
    assert models["SmolLM2-135M-Instruct"]["error_rate"] == pytest.approx(1 / 3)


def test_operator_overview_is_staff_only(owner_client):
    response = owner_client.get("/console/operators/usage/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_usage_admin_is_read_only(client, operator, owner_usage):
    client.force_login(operator)
    assert client.get("/admin/usage/usagerecord/").status_code == 200
    assert client.get("/admin/usage/usagerecord/add/").status_code == 403
    assert client.get("/admin/inference/usagerecord/?q=x").url == "/admin/usage/usagerecord/?q=x"  # old bookmarks
