"""/api/v1/ask with a knowledge base answers from its passages with citations, or says nothing
was found; the console pages create bases, upload documents and show their status; everything
is out of reach for another user."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services as account_services
from knowledge import services, vector_index
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.retrieval import NOT_FOUND_ANSWER
from tests.inference.helpers import call
from tests.knowledge.helpers import ingest_all, upload
from usage.models import UsageRecord
from usage.recorder import recorder

FAQ = (
    b"Our office is open from nine to five on weekdays.\n\n"
    b"The warranty on every laptop lasts two years and covers the battery.\n\n"
    b"Support tickets are answered within one business day."
)


def _base_with_faq(key: str) -> str:
    file_id = upload(key, FAQ, "faq.txt").json()["id"]
    store = call("POST", "/v1/vector_stores", key, {"name": "FAQ", "file_ids": [file_id]}).json()
    ingest_all()
    return store["id"]


def _ask(key: str, body: dict):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api.post("/api/v1/ask", body, format="json")


def test_ask_answers_from_the_knowledge_base_with_citations(owner, owner_key, fake_models, settings):
    settings.KNOWLEDGE_CHUNK_CHARS, settings.KNOWLEDGE_CHUNK_OVERLAP = 100, 0  # one fact per chunk
    base_id = _base_with_faq(owner_key)
    response = _ask(owner_key, {"question": "How long does the laptop warranty last?", "knowledge_base": base_id})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["found"] is True
    top = body["citations"][0]
    assert top["document"] == "faq.txt" and "two years" in top["text"] and 0 < top["score"] <= 1
    assert {"file_id", "chunk_id", "chunk_index"} <= set(top)
    assert "two years" in fake_models.contexts[-1]  # the model was given the passages
    assert "two years" in body["answer"]
    recorder().flush()
    endpoints = set(UsageRecord.objects.filter(user=owner).values_list("endpoint", "model"))
    assert ("ask", "SmolLM2-135M-Instruct") in endpoints  # the generation
    assert ("knowledge.query", "all-MiniLM-L6-v2") in endpoints  # the question's embedding


def test_ask_says_so_when_nothing_relevant_is_found(owner_key, fake_models):
    base_id = _base_with_faq(owner_key)
    response = _ask(owner_key, {"question": "Which planets have rings?", "knowledge_base": base_id})
    assert response.status_code == 200
    body = response.json()
    assert body["found"] is False and body["citations"] == []
    assert body["answer"] == NOT_FOUND_ANSWER.format(name="FAQ")
    assert fake_models.contexts == []  # nothing generated, nothing invented


def test_ask_refuses_another_users_knowledge_base(owner_key, other_user, fake_models):
    base_id = _base_with_faq(owner_key)
    other_key = account_services.api_key_create(user=other_user, name="k")[1]
    response = _ask(other_key, {"question": "How long is the warranty?", "knowledge_base": base_id})
    assert response.status_code == 404 and "No such knowledge base" in response.json()["detail"]


def test_a_pasted_context_joins_the_passages(owner_key, fake_models, settings):
    settings.KNOWLEDGE_CHUNK_CHARS, settings.KNOWLEDGE_CHUNK_OVERLAP = 100, 0  # one fact per chunk
    base_id = _base_with_faq(owner_key)
    pasted = "Mars has two small moons."
    found = _ask(
        owner_key, {"question": "How long is the laptop warranty?", "knowledge_base": base_id, "context": pasted}
    )
    assert found.status_code == 200 and found.json()["found"] is True
    assert "two years" in fake_models.contexts[-1] and pasted in fake_models.contexts[-1]
    only_pasted = _ask(
        owner_key, {"question": "How many moons has Mars?", "knowledge_base": base_id, "context": pasted}
    )
    assert only_pasted.json()["found"] is False and only_pasted.json()["citations"] == []
    assert fake_models.contexts[-1] == pasted  # nothing relevant in the base: answered from the pasted text


@pytest.mark.parametrize("knowledge_base", ["vs_missing", "vs_\u0000x", "../etc"])
def test_unknown_knowledge_bases_are_not_found(owner_key, fake_models, knowledge_base):
    response = _ask(owner_key, {"question": "q", "knowledge_base": knowledge_base})
    assert response.status_code in (400, 404)


# --- console --------------------------------------------------------------------------------------


def test_a_person_creates_a_base_and_uploads_a_document_in_the_console(owner_client, fake_models):
    page = owner_client.get(reverse("knowledge-bases"))
    assert page.status_code == 200 and b"all-MiniLM-L6-v2" in page.content
    created = owner_client.post(reverse("knowledge-bases"), {"name": "Handbook", "embedding_model": "all-MiniLM-L6-v2"})
    base = KnowledgeBase.objects.get()
    assert created.status_code == 302 and created.url == reverse("knowledge-base", args=[base.pk])
    uploaded = owner_client.post(
        reverse("knowledge-base", args=[base.pk]), {"file": SimpleUploadedFile("faq.html", b"<p>" + FAQ + b"</p>")}
    )
    assert uploaded.status_code == 302
    detail = owner_client.get(reverse("knowledge-base", args=[base.pk]))
    assert b"faq.html" in detail.content and b"processing" in detail.content
    ingest_all()
    status = owner_client.get(reverse("knowledge-base-status", args=[base.pk])).json()
    assert status["documents"][0]["label"] == "ready" and status["documents"][0]["progress"] == 100
    assert status["vector_store"]["file_counts"]["completed"] == 1


def test_console_forms_show_errors_for_bad_input(owner_client, owner):
    bad = owner_client.post(reverse("knowledge-bases"), {"name": "", "embedding_model": "nope"})
    assert bad.status_code == 400 and b"field-error" in bad.content
    base = services.knowledge_base_create(user=owner, name="B")
    too_big = owner_client.post(
        reverse("knowledge-base", args=[base.pk]), {"file": SimpleUploadedFile("x.exe", b"\x00")}
    )
    assert too_big.status_code == 400 and b"Unsupported file type" in too_big.content


def test_deleting_in_the_console_removes_documents_and_bases(owner_client, owner_key, fake_models):
    base_id = _base_with_faq(owner_key)
    document = Document.objects.get()
    response = owner_client.post(reverse("knowledge-document-delete", args=[base_id, document.pk]))
    assert response.status_code == 302 and not Document.objects.exists() and not Chunk.objects.exists()
    owner_client.post(reverse("knowledge-base-delete", args=[base_id]))
    assert not KnowledgeBase.objects.exists()


def test_another_users_pages_are_not_found(client, other_user, owner_key, fake_models):
    base_id = _base_with_faq(owner_key)
    document = Document.objects.get()
    client.force_login(other_user)
    assert base_id.encode() not in client.get(reverse("knowledge-bases")).content
    assert client.get(reverse("knowledge-base", args=[base_id])).status_code == 404
    assert client.get(reverse("knowledge-base-status", args=[base_id])).status_code == 404
    assert (
        client.post(reverse("knowledge-base", args=[base_id]), {"file": SimpleUploadedFile("a.txt", b"hi")}).status_code
        == 404
    )
    assert client.post(reverse("knowledge-document-delete", args=[base_id, document.pk])).status_code == 404
    assert client.post(reverse("knowledge-base-delete", args=[base_id])).status_code == 404
    assert Document.objects.filter(pk=document.pk).exists() and KnowledgeBase.objects.filter(pk=base_id).exists()


def test_pages_need_a_login(client):
    assert client.get(reverse("knowledge-bases")).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_server_thread_ingests_documents_off_the_request_path(settings, monkeypatch):
    from inference import services as inference_services
    from tests.conftest import make_user
    from tests.knowledge.helpers import DIMENSIONS, FakeModels
    from tests.playground.conftest import seed_registry

    seed_registry()  # an earlier transactional test may have flushed the migrations' model rows
    # The vector table exists before the runner thread writes: creating it there would need the
    # schema lock that this thread's reads of the shared in-memory test database can hold.
    index = vector_index.current_index()
    if isinstance(index, vector_index.SqliteVecIndex):
        with connection.cursor() as cursor:
            index._ensure(cursor, DIMENSIONS)
    settings.BATCH_RUNNER = "thread"
    models = FakeModels()
    monkeypatch.setattr(inference_services, "embeddings_create", models.embeddings_create)
    user = make_user("threaded@example.com")
    key = account_services.api_key_create(user=user, name="k")[1]
    file_id = upload(key, FAQ, "faq.txt").json()["id"]
    store_id = call("POST", "/v1/vector_stores", key, {"name": "FAQ", "file_ids": [file_id]}).json()["id"]
    deadline = time.monotonic() + 20
    status = "in_progress"
    while status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.2)
        # The test database is SQLite in memory (shared cache): a read while the runner writes
        # may find the table locked (a 503); poll again.
        response = call("GET", f"/v1/vector_stores/{store_id}/files/{file_id}", key)
        if response.status == 200:
            status = response.json()["status"]
    assert status == "completed"
    assert models.embedded  # the runner thread embedded the chunks


def test_operators_see_knowledge_bases_in_the_admin(client, operator, owner_key, fake_models):
    base_id = _base_with_faq(owner_key)
    client.force_login(operator)
    assert client.get("/admin/knowledge/knowledgebase/").status_code == 200
    assert client.get(f"/admin/knowledge/knowledgebase/{base_id}/change/").status_code == 200
    assert client.get("/admin/knowledge/document/").status_code == 200
    assert client.get("/admin/batches/file/").status_code == 200


def test_the_playground_offers_only_your_own_knowledge_bases(owner_client, owner, other_user):
    mine = services.knowledge_base_create(user=owner, name="My handbook")
    theirs = services.knowledge_base_create(user=other_user, name="Their secrets")
    page = owner_client.get(reverse("playground"))
    assert page.status_code == 200
    assert mine.pk.encode() in page.content and b"My handbook" in page.content
    assert theirs.pk.encode() not in page.content and b"Their secrets" not in page.content
