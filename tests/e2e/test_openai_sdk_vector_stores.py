"""The official openai SDK's vector store methods against a live server: upload a document,
add it to a vector store and wait for it (ingested by the server's runner with the real
embedding model), search it, answer from it on /api/v1/ask, delete it."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

pytestmark = pytest.mark.e2e

HANDBOOK = (
    "# Travel policy\n\nEmployees book train travel for any trip under 600 kilometres.\n\n"
    "# Expenses\n\nHotel costs are reimbursed up to 140 euros per night in Amsterdam.\n\n"
    "# Equipment\n\nEvery new colleague receives a laptop and a headset on their first day."
)


@pytest.fixture(scope="module")
def api_key(portal_server) -> str:
    return portal_server.create_user_and_key("sdk-vector-stores@example.com")


@pytest.fixture(scope="module")
def sdk(portal_server, api_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{portal_server.url}/v1", api_key=api_key, max_retries=0, timeout=120)


def test_vector_store_create_files_search_and_ask(sdk, portal_server, api_key):
    store = sdk.vector_stores.create(name="Handbook")
    assert store.object == "vector_store" and store.id.startswith("vs_")
    document = ("handbook.md", io.BytesIO(HANDBOOK.encode()))
    added = sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=document, poll_interval_ms=200)
    assert added.status == "completed" and added.last_error is None
    assert [f.id for f in sdk.vector_stores.files.list(vector_store_id=store.id)] == [added.id]
    assert sdk.vector_stores.retrieve(store.id).file_counts.completed == 1

    results = list(sdk.vector_stores.search(store.id, query="How much can I spend on a hotel?", max_num_results=2))
    assert results and results[0].filename == "handbook.md" and results[0].file_id == added.id
    assert "140 euros" in results[0].content[0].text and 0 < results[0].score <= 1

    answer = httpx.post(
        f"{portal_server.url}/api/v1/ask",
        json={"question": "How much is a hotel night reimbursed?", "knowledge_base": store.id, "max_length": 24},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["found"] is True and "140 euros" in body["citations"][0]["text"]

    assert sdk.vector_stores.files.delete(file_id=added.id, vector_store_id=store.id).deleted is True
    assert list(sdk.vector_stores.search(store.id, query="hotel")) == []
    assert sdk.vector_stores.delete(store.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.retrieve(store.id)
