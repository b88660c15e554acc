"""OpenAI's vector store API: files with purpose `assistants`, vector stores, their files and
status, search with scores and documents; ingestion off the request path (stand-in models),
metered; another user's stores, files and chunks are out of reach on every endpoint."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from batches.models import File
from knowledge.models import Chunk, Document, KnowledgeBase
from tests.inference.helpers import call
from tests.knowledge.helpers import ingest_all, upload
from usage.models import UsageRecord
from usage.recorder import recorder

REFUNDS = (
    b"# Refunds\n\nRefunds are paid back to the original card within five working days. "
    b"A refund needs the order number.\n\n# Shipping\n\nParcels ship from Rotterdam every weekday at noon."
)
PASSWORDS = b"To reset a forgotten password, open Settings, choose Security and press Reset password."


@pytest.fixture
def other_key(other_user) -> str:
    return account_services.api_key_create(user=other_user, name="other")[1]


def _store_with_files(key: str, *documents: tuple[bytes, str]) -> tuple[str, list[str]]:
    file_ids = [upload(key, data, name).json()["id"] for data, name in documents]
    created = call("POST", "/v1/vector_stores", key, {"name": "Support", "file_ids": file_ids})
    assert created.status == 200, created.body
    return created.json()["id"], file_ids


def test_a_document_goes_from_upload_to_searchable_chunks(owner_key, fake_models):
    uploaded = upload(owner_key, REFUNDS, "refunds.md")
    assert uploaded.status == 200, uploaded.body
    assert uploaded.json()["purpose"] == "assistants"
    store_id, (file_id,) = _store_with_files(owner_key, (REFUNDS, "refunds.md"))[0], [uploaded.json()["id"]]
    added = call("POST", f"/v1/vector_stores/{store_id}/files", owner_key, {"file_id": file_id})
    assert added.status == 200 and added.json()["status"] == "in_progress"
    assert added.json()["object"] == "vector_store.file" and added.json()["vector_store_id"] == store_id
    ingest_all()
    status = call("GET", f"/v1/vector_stores/{store_id}/files/{file_id}", owner_key).json()
    assert status["status"] == "completed" and status["last_error"] is None and status["chunks_total"] >= 1
    store = call("GET", f"/v1/vector_stores/{store_id}", owner_key).json()
    assert store["object"] == "vector_store" and store["file_counts"]["completed"] == 2
    assert store["usage_bytes"] == 2 * len(REFUNDS)

    found = call(
        "POST",
        f"/v1/vector_stores/{store_id}/search",
        owner_key,
        {"query": "when do parcels ship", "max_num_results": 2},
    )
    assert found.status == 200, found.body
    body = found.json()
    assert body["object"] == "vector_store.search_results.page"
    top = body["data"][0]
    assert "Rotterdam" in top["content"][0]["text"] and top["filename"] == "refunds.md" and 0 < top["score"] <= 1
    assert len(body["data"]) <= 2


def test_score_threshold_drops_weak_matches(owner_key, fake_models):
    store_id, _ = _store_with_files(owner_key, (PASSWORDS, "passwords.txt"))
    ingest_all()
    strict = call(
        "POST",
        f"/v1/vector_stores/{store_id}/search",
        owner_key,
        {"query": "parcels Rotterdam", "ranking_options": {"score_threshold": 0.5}},
    )
    assert strict.status == 200 and strict.json()["data"] == []


def test_unreadable_documents_end_failed_with_a_reason(owner_key, fake_models):
    store_id, (file_id,) = _store_with_files(owner_key, (b"%PDF-1.4 not really", "broken.pdf"))
    ingest_all()
    status = call("GET", f"/v1/vector_stores/{store_id}/files/{file_id}", owner_key).json()
    assert status["status"] == "failed"
    assert status["last_error"]["code"] == "unsupported_file" and "PDF" in status["last_error"]["message"]
    listed = call("GET", f"/v1/vector_stores/{store_id}/files?filter=failed", owner_key).json()
    assert [entry["id"] for entry in listed["data"]] == [file_id]


def test_ingestion_and_search_are_metered(owner, owner_key, fake_models):
    store_id, _ = _store_with_files(owner_key, (REFUNDS, "refunds.md"))
    ingest_all()
    call("POST", f"/v1/vector_stores/{store_id}/search", owner_key, {"query": "refund card"})
    recorder().flush()
    rows = {row.endpoint: row for row in UsageRecord.objects.filter(user=owner)}
    assert rows["knowledge.ingest"].model == "all-MiniLM-L6-v2" and rows["knowledge.ingest"].prompt_tokens > 0
    assert rows["knowledge.ingest"].prompt_tokens == Document.objects.get().embedding_tokens
    search = UsageRecord.objects.filter(user=owner, endpoint="vector_stores", model="all-MiniLM-L6-v2").get()
    assert search.prompt_tokens == 2


def test_a_spent_budget_fails_ingestion_with_the_reason(owner, owner_key, fake_models):
    store_id, (file_id,) = _store_with_files(owner_key, (REFUNDS, "refunds.md"))
    plan = owner.plan
    plan.tokens_per_day = 0
    plan.save()
    ingest_all()
    document = Document.objects.get()
    assert document.status == Document.Status.FAILED and document.error_code == "insufficient_quota"
    assert not Chunk.objects.exists()


def test_uploads_beyond_the_plan_quota_are_refused(owner, owner_key, fake_models):
    plan = owner.plan
    plan.knowledge_max_bytes = len(REFUNDS) + 10
    plan.save()
    assert upload(owner_key, REFUNDS, "a.md").status == 200
    refused = upload(owner_key, REFUNDS, "b.md")
    assert refused.status == 400 and refused.json()["error"]["param"] == "file"
    assert "Your plan allows" in refused.json()["error"]["message"]


def test_unsupported_and_empty_uploads_are_refused(owner_key):
    assert upload(owner_key, b"", "empty.txt").status == 400
    assert upload(owner_key, b"\x00\x01", "tool.exe").status == 400
    assert upload(owner_key, b"x", "a.txt", purpose="fine-tune").json()["error"]["param"] == "purpose"


def test_a_batch_file_cannot_be_added_to_a_vector_store(owner_key, fake_models):
    store_id = call("POST", "/v1/vector_stores", owner_key, {"name": "x"}).json()["id"]
    batch_line = (
        b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", '
        b'"body": {"model": "all-MiniLM-L6-v2", "input": "x"}}\n'
    )
    batch_file = upload(owner_key, batch_line, "in.jsonl", purpose="batch").json()["id"]
    refused = call("POST", f"/v1/vector_stores/{store_id}/files", owner_key, {"file_id": batch_file})
    assert refused.status == 404 and refused.json()["error"]["param"] == "file_id"


def test_deleting_a_file_or_store_deletes_its_vectors(owner_key, fake_models):
    store_id, (first, second) = _store_with_files(owner_key, (REFUNDS, "refunds.md"), (PASSWORDS, "passwords.txt"))
    ingest_all()
    deleted = call("DELETE", f"/v1/vector_stores/{store_id}/files/{first}", owner_key)
    assert deleted.json() == {"id": first, "object": "vector_store.file.deleted", "deleted": True}
    assert File.objects.filter(pk=first).exists()  # the uploaded file stays, as on OpenAI
    results = call("POST", f"/v1/vector_stores/{store_id}/search", owner_key, {"query": "refund card"}).json()
    assert {hit["file_id"] for hit in results["data"]} == {second}
    assert call("DELETE", f"/v1/vector_stores/{store_id}", owner_key).json()["deleted"] is True
    assert not KnowledgeBase.objects.exists() and not Chunk.objects.exists()
    assert call("GET", f"/v1/vector_stores/{store_id}", owner_key).status == 404


def test_stores_can_be_listed_renamed_and_paged(owner_key, fake_models):
    ids = [call("POST", "/v1/vector_stores", owner_key, {"name": f"s{i}"}).json()["id"] for i in range(3)]
    page = call("GET", "/v1/vector_stores?limit=2", owner_key).json()
    assert [s["id"] for s in page["data"]] == ids[::-1][:2] and page["has_more"] is True
    rest = call("GET", f"/v1/vector_stores?limit=2&after={page['last_id']}", owner_key).json()
    assert [s["id"] for s in rest["data"]] == [ids[0]] and rest["has_more"] is False
    renamed = call(
        "POST", f"/v1/vector_stores/{ids[0]}", owner_key, {"name": "Renamed", "metadata": {"team": "support"}}
    )
    assert renamed.json()["name"] == "Renamed" and renamed.json()["metadata"] == {"team": "support"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": 5}, "name"),
        ({"file_ids": "file-1"}, "file_ids"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"embedding_model": "SmolLM2-135M-Instruct"}, "embedding_model"),
    ],
)
def test_bad_store_requests_get_openai_errors(owner_key, body, param):
    response = call("POST", "/v1/vector_stores", owner_key, body)
    assert response.status == 400 and response.json()["error"]["param"] == param


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "filter=done"])
def test_bad_list_parameters_get_openai_errors(owner_key, query):
    store_id = call("POST", "/v1/vector_stores", owner_key, {"name": "x"}).json()["id"]
    assert call("GET", f"/v1/vector_stores/{store_id}/files?{query}", owner_key).status == 400
    if query.startswith("limit"):
        assert call("GET", f"/v1/vector_stores?{query}", owner_key).status == 400


def test_odd_ids_are_not_found(owner_key):
    store_id = call("POST", "/v1/vector_stores", owner_key, {"name": "x"}).json()["id"]
    assert call("GET", "/v1/vector_stores/vs%00x", owner_key).status == 404
    assert call("GET", f"/v1/vector_stores/{store_id}/files/file%00x", owner_key).status == 404
    assert call("GET", "/v1/vector_stores?after=vs%00x", owner_key).status == 200


@pytest.mark.parametrize(
    "body", [{}, {"query": ""}, {"query": 3}, {"query": "x", "max_num_results": 0}, {"query": ["ok", ""]}]
)
def test_bad_searches_get_openai_errors(owner_key, fake_models, body):
    store_id = call("POST", "/v1/vector_stores", owner_key, {"name": "x"}).json()["id"]
    response = call("POST", f"/v1/vector_stores/{store_id}/search", owner_key, body)
    assert response.status == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_another_users_stores_files_and_chunks_are_out_of_reach(owner_key, other_key, fake_models):
    store_id, (file_id,) = _store_with_files(owner_key, (REFUNDS, "refunds.md"))
    ingest_all()
    for method, path, body in [
        ("GET", f"/v1/vector_stores/{store_id}", None),
        ("POST", f"/v1/vector_stores/{store_id}", {"name": "mine now"}),
        ("DELETE", f"/v1/vector_stores/{store_id}", None),
        ("GET", f"/v1/vector_stores/{store_id}/files", None),
        ("POST", f"/v1/vector_stores/{store_id}/files", {"file_id": file_id}),
        ("GET", f"/v1/vector_stores/{store_id}/files/{file_id}", None),
        ("DELETE", f"/v1/vector_stores/{store_id}/files/{file_id}", None),
        ("POST", f"/v1/vector_stores/{store_id}/search", {"query": "refund"}),
        ("GET", f"/v1/files/{file_id}", None),
        ("GET", f"/v1/files/{file_id}/content", None),
    ]:
        response = call(method, path, other_key, body)
        assert response.status == 404, (method, path, response.body)
    assert call("GET", "/v1/vector_stores", other_key).json()["data"] == []
    # Their own store cannot take my file, and their searches never return my chunks.
    theirs = call("POST", "/v1/vector_stores", other_key, {"name": "theirs", "file_ids": [file_id]})
    assert theirs.status == 404
    their_store = call("POST", "/v1/vector_stores", other_key, {"name": "theirs"}).json()["id"]
    assert call("POST", f"/v1/vector_stores/{their_store}/search", other_key, {"query": "refund"}).json()["data"] == []
    assert KnowledgeBase.objects.get(pk=store_id).name == "Support"
    assert Document.objects.filter(knowledge_base_id=store_id).count() == 1


def test_the_uploaded_document_can_be_downloaded_as_sent(owner_key):
    file_id = upload(owner_key, REFUNDS, "refunds.md").json()["id"]
    content = call("GET", f"/v1/files/{file_id}/content", owner_key)
    assert content.status == 200 and content.body == REFUNDS


def test_unfinished_documents_are_queued_again_at_start(owner_key, fake_models, settings, monkeypatch):
    from batches import dispatch

    _, (file_id,) = _store_with_files(owner_key, (REFUNDS, "refunds.md"))
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "document_enqueue", lambda *, document_id: queued.append(document_id))
    settings.BATCH_RUNNER = "thread"
    assert dispatch.resume_active_batches() == 1
    assert queued == [Document.objects.get(file_id=file_id).pk]


def test_a_document_deleted_while_embedding_stores_nothing(owner_key, fake_models, monkeypatch):
    from inference import services as inference_services

    store_id, (file_id,) = _store_with_files(owner_key, (REFUNDS, "refunds.md"))
    embed = fake_models.embeddings_create

    async def embed_then_delete(**kwargs):
        from asgiref.sync import sync_to_async

        await sync_to_async(Document.objects.filter(file_id=file_id).delete)()
        return await embed(**kwargs)

    monkeypatch.setattr(inference_services, "embeddings_create", embed_then_delete)
    ingest_all()
    assert not Chunk.objects.exists() and not Document.objects.exists()
    assert call("GET", f"/v1/vector_stores/{store_id}/files/{file_id}", owner_key).status == 404
