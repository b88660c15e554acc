"""Files and batches without a model: upload validation, OpenAI shapes, ownership, cancellation,
and the runner (with a stand-in engine) billing each line once across a dead run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient

from accounts import services as account_services
from batches import runner, services
from batches.models import Batch, BatchLine, File
from inference import registry
from tests.inference.helpers import Result, call
from usage.models import UsageRecord

MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture(autouse=True)
def _no_runner(settings):
    settings.BATCH_RUNNER = "off"  # the tests drive batches.runner themselves


def jsonl(n: int, *, url: str = "/v1/chat/completions") -> bytes:
    rows = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": url,
            "body": {"model": MODEL, "max_tokens": 2}
            | (
                {"prompt": f"Hi {i}"}
                if url == "/v1/completions"
                else {"messages": [{"role": "user", "content": f"Hi {i}"}]}
            ),
        }
        for i in range(n)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def upload(key: str, data: bytes, *, purpose: str = "batch", name: str = "in.jsonl") -> Result:
    async def run() -> Result:
        response = await AsyncClient().post(
            "/v1/files",
            data={"purpose": purpose, "file": SimpleUploadedFile(name, data, content_type="application/jsonl")},
            headers={"Authorization": f"Bearer {key}"},
        )
        return Result(response.status_code, dict(response.items()), response.content)

    return async_to_sync(run)()


def create_batch(key: str, n: int = 3) -> dict:
    file_id = upload(key, jsonl(n)).json()["id"]
    result = call(
        "POST",
        "/v1/batches",
        key,
        {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    )
    assert result.status == 200, result.body
    return result.json()


@pytest.fixture
def other_key(other_user) -> str:
    _, raw_key = account_services.api_key_create(user=other_user, name="other key")
    return raw_key


def test_upload_answers_an_openai_file_object(owner_key):
    result = upload(owner_key, jsonl(2))
    assert result.status == 200
    body = result.json()
    assert body["object"] == "file" and body["id"].startswith("file-") and body["purpose"] == "batch"
    assert body["bytes"] == len(jsonl(2)) and body["filename"] == "in.jsonl"


def test_upload_names_each_bad_line(owner_key):
    good = jsonl(1).decode()
    bad = good + "not json\n" + json.dumps({"custom_id": "req-0", "method": "POST", "url": "/v1/x", "body": {}})
    result = upload(owner_key, bad.encode())
    assert result.status == 400
    error = result.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file"
    assert "line 2: not valid JSON" in error["message"] and "line 3:" in error["message"]


def test_upload_rejects_other_purposes_and_big_files(owner_key, settings):
    assert upload(owner_key, jsonl(1), purpose="fine-tune").json()["error"]["param"] == "purpose"
    settings.BATCH_FILE_MAX_BYTES = 10
    assert "larger than" in upload(owner_key, jsonl(1)).json()["error"]["message"]


def test_files_and_batches_need_a_key():
    assert call("GET", "/v1/files").status == 401
    assert call("GET", "/v1/batches").status == 401


def test_create_batch_answers_an_openai_batch_object(owner_key):
    batch = create_batch(owner_key, 3)
    assert batch["object"] == "batch" and batch["id"].startswith("batch_") and batch["status"] == "validating"
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 0}
    assert BatchLine.objects.filter(batch_id=batch["id"]).count() == 3
    listed = call("GET", "/v1/batches", owner_key).json()
    assert listed["object"] == "list" and [b["id"] for b in listed["data"]] == [batch["id"]]


def test_batch_endpoint_must_match_every_line(owner_key):
    file_id = upload(owner_key, jsonl(1, url="/v1/completions")).json()["id"]
    result = call("POST", "/v1/batches", owner_key, {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                      "completion_window": "24h"})  # fmt: skip
    assert result.status == 400


def test_another_users_files_and_batches_are_out_of_reach(owner_key, other_key):
    batch = create_batch(owner_key)
    file_id = batch["input_file_id"]
    assert call("GET", f"/v1/files/{file_id}", other_key).status == 404
    assert call("GET", f"/v1/files/{file_id}/content", other_key).status == 404
    assert call("GET", f"/v1/batches/{batch['id']}", other_key).status == 404
    assert call("POST", f"/v1/batches/{batch['id']}/cancel", other_key).status == 404
    assert call("GET", "/v1/batches", other_key).json()["data"] == []
    assert call("GET", "/v1/files", other_key).json()["data"] == []
    using_theirs = call("POST", "/v1/batches", other_key, {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                           "completion_window": "24h"})  # fmt: skip
    assert using_theirs.status == 404
    assert call("GET", f"/v1/files/{file_id}/content", owner_key).body == jsonl(3)


@dataclass
class FakeGeneration:
    prompt_tokens: int = 5
    total_completion_tokens: int = 2
    extras: list = field(default_factory=lambda: [{}])  # per choice: an upstream's tool_calls, logprobs


@pytest.fixture
def fake_engine(monkeypatch):
    calls: list[str] = []

    async def generation_run(*, model, request, n, check_prompt=None):
        if check_prompt is not None:
            check_prompt(7)  # the plan's prompt cap applies to batch lines too
        calls.append(request.messages[-1]["content"])
        return FakeGeneration(), [("ok", "length")]

    monkeypatch.setattr(runner.inference, "generation_run", generation_run)
    return calls


def test_a_run_answers_every_line_and_bills_each_once(owner, owner_key, fake_engine):
    batch = create_batch(owner_key, 4)
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    done = call("GET", f"/v1/batches/{batch['id']}", owner_key).json()
    assert done["status"] == "completed" and done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    output = call("GET", f"/v1/files/{done['output_file_id']}/content", owner_key).body.decode().splitlines()
    rows = [json.loads(line) for line in output]
    assert [row["custom_id"] for row in rows] == ["req-0", "req-1", "req-2", "req-3"]
    assert rows[0]["response"]["status_code"] == 200
    assert rows[0]["response"]["body"]["choices"][0]["message"]["content"] == "ok"
    usage = UsageRecord.objects.filter(user=owner, endpoint="batch")
    assert usage.count() == 4 and sorted(usage.values_list("request_id", flat=True)) == sorted(
        f"{batch['id']}-{i}" for i in range(4)
    )
    assert all(row.prompt_tokens == 5 and row.completion_tokens == 2 for row in usage)


def test_a_line_left_running_by_a_dead_run_is_run_again_and_billed_once(owner, owner_key, fake_engine):
    batch = create_batch(owner_key, 3)
    services.batch_run_start(batch_id=batch["id"], run_id="dead")
    line = services.batch_line_claim(batch_id=batch["id"], run_id="dead")  # then the worker died
    assert line is not None and line.state == BatchLine.State.RUNNING
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    assert len(fake_engine) == 3
    # The dead run's answer, should it still arrive, is dropped and bills nothing.
    assert not services.batch_line_complete(line_id=line.pk, run_id="dead", status_code=200, response={}, usage=None)
    assert UsageRecord.objects.filter(endpoint="batch").count() == 3
    assert Batch.objects.get(pk=batch["id"]).completed == 3


def test_cancel_stops_before_the_next_line_and_lists_unrun_lines(owner_key, fake_engine):
    batch = create_batch(owner_key, 3)
    services.batch_run_start(batch_id=batch["id"], run_id="r1")
    line = services.batch_line_claim(batch_id=batch["id"], run_id="r1")
    assert line is not None
    services.batch_line_complete(line_id=line.pk, run_id="r1", status_code=200, response={"ok": 1}, usage=None)
    cancelling = call("POST", f"/v1/batches/{batch['id']}/cancel", owner_key).json()
    assert cancelling["status"] == "cancelling"
    assert services.batch_line_claim(batch_id=batch["id"], run_id="r1") is None
    services.batch_finalize(batch_id=batch["id"], run_id="r1")
    ended = call("GET", f"/v1/batches/{batch['id']}", owner_key).json()
    assert ended["status"] == "cancelled" and ended["request_counts"]["completed"] == 1
    errors = call("GET", f"/v1/files/{ended['error_file_id']}/content", owner_key).body.decode().splitlines()
    assert [json.loads(row)["error"]["code"] for row in errors] == ["batch_cancelled", "batch_cancelled"]
    assert fake_engine == []
    assert call("POST", f"/v1/batches/{batch['id']}/cancel", owner_key).json()["status"] == "cancelled"


def test_a_revoked_key_fails_the_remaining_lines_unbilled(owner, owner_key, fake_engine):
    batch = create_batch(owner_key, 2)
    account_services.api_key_revoke(api_key=owner.api_keys.get())
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    ended = Batch.objects.get(pk=batch["id"])
    assert ended.status == "completed" and ended.failed == 2 and fake_engine == []
    assert not UsageRecord.objects.filter(endpoint="batch").exists()


def test_console_lists_only_my_batches(client, owner, owner_key, other_user, other_key):
    mine = create_batch(owner_key)
    theirs = create_batch(other_key)
    client.force_login(owner)
    page = client.get("/console/batches/").content.decode()
    assert mine["id"] in page and theirs["id"] not in page
    assert "<progress" in page and "style=" not in page


def test_file_object_is_the_stored_file(owner, owner_key):
    file_id = upload(owner_key, jsonl(2)).json()["id"]
    stored = File.objects.get(pk=file_id)
    assert stored.user == owner and stored.line_count == 2


def test_a_batch_past_its_window_expires_with_its_unrun_lines(owner_key, fake_engine):
    from datetime import timedelta

    from django.utils import timezone

    batch = create_batch(owner_key, 2)
    Batch.objects.filter(pk=batch["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    ended = call("GET", f"/v1/batches/{batch['id']}", owner_key).json()
    assert ended["status"] == "expired" and ended["expired_at"] and fake_engine == []
    errors = call("GET", f"/v1/files/{ended['error_file_id']}/content", owner_key).body.decode().splitlines()
    assert [json.loads(row)["error"]["code"] for row in errors] == ["batch_expired", "batch_expired"]


def test_a_file_is_deleted_only_once_its_batch_is_done(owner_key, other_key, fake_engine):
    batch = create_batch(owner_key, 1)
    file_id = batch["input_file_id"]
    assert call("DELETE", f"/v1/files/{file_id}", other_key).status == 404
    busy = call("DELETE", f"/v1/files/{file_id}", owner_key)
    assert busy.status == 409 and busy.json()["error"]["code"] == "file_in_use"
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    deleted = call("DELETE", f"/v1/files/{file_id}", owner_key)
    assert deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert call("GET", f"/v1/files/{file_id}", owner_key).status == 404
    assert call("GET", f"/v1/batches/{batch['id']}", owner_key).json()["input_file_id"] is None


def test_usage_dashboard_shows_batch_usage_apart(client, owner, owner_key, fake_engine):
    batch = create_batch(owner_key, 2)
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    client.force_login(owner)
    page = client.get("/console/usage/").content.decode()
    endpoints = page.split('class="by-endpoint"', 1)[1].split("</table>", 1)[0]
    assert "<td>batch</td><td>2</td><td>14</td>" in endpoints


def test_thread_runner_with_several_workers_warns(settings, monkeypatch):
    from batches.checks import check_batch_runner_with_many_workers

    settings.BATCH_RUNNER = "thread"
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    assert [w.id for w in check_batch_runner_with_many_workers()] == ["batches.W001"]
    settings.BATCH_RUNNER = "celery"
    assert check_batch_runner_with_many_workers() == []


@pytest.mark.django_db(transaction=True)
def test_a_key_budget_spent_mid_batch_fails_the_remaining_lines_with_insufficient_quota(owner, fake_engine):
    """Each line's row is added to the month's total when its transaction commits, so the budget
    holds within one batch (lines of 5 + 2 tokens, a budget of 14)."""
    from tests.playground.conftest import seed_registry

    seed_registry()  # an earlier transactional test may have flushed the migrations' model rows
    registry.forget_cached_specs()
    _, key = account_services.api_key_create(user=owner, name="budgeted", monthly_token_budget=14)
    batch = create_batch(key, 3)
    async_to_sync(runner.batch_run)(batch_id=batch["id"])
    done = Batch.objects.get(pk=batch["id"])
    assert (done.completed, done.failed) == (2, 1), list(BatchLine.objects.values_list("response", flat=True))
    (failed,) = BatchLine.objects.filter(batch=done, state=BatchLine.State.FAILED)
    assert failed.status_code == 429 and failed.response["error"]["code"] == "insufficient_quota"
    # The key is spent: the API answers it so too (reading the batch is a request of the key).
    assert call("GET", f"/v1/batches/{batch['id']}", key).json()["error"]["code"] == "insufficient_quota"
