"""The playground page, the conversation list (reopen, rename, delete) and the embeddings endpoint."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils.html import escape

from playground import services
from playground.models import Conversation, Message
from tests.playground.conftest import CHAT_MODEL, EMBED_MODEL, seed_registry
from usage.models import UsageRecord
from usage.recorder import recorder


@pytest.fixture(autouse=True)
def _registry(db):
    seed_registry()


@pytest.fixture
def owners_conversation(owner) -> Conversation:
    conversation = services.conversation_create(
        user=owner, model=CHAT_MODEL, system_prompt="Be brief.", params={"temperature": 0.2, "stop": ["\n"]}
    )
    services.message_append(conversation=conversation, role="user", content="Hello <script>alert(1)</script>")
    services.message_append(
        conversation=conversation, role="assistant", content="Hi!", completion_tokens=2, tokens_per_s=12.5
    )
    return conversation


@pytest.fixture
def others_conversation(other_user) -> Conversation:
    return services.conversation_create(user=other_user, model=CHAT_MODEL, title="other's private chat")


def test_the_page_requires_login(client, db):
    response = client.get("/playground/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_page_offers_the_models_settings_and_socket(owner_client):
    response = owner_client.get("/playground/")
    assert response.status_code == 200
    html = response.content.decode()
    for needle in (
        f'<option value="{CHAT_MODEL}" selected>',
        f'<option value="{EMBED_MODEL}" selected>',
        '<label for="pg-temperature">Temperature</label>',
        '<label for="pg-top-p">Top p</label>',
        '<label for="pg-max-tokens">Max tokens</label>',
        '<label for="pg-stop">Stop sequences</label>',
        '<label for="pg-system">System prompt</label>',
        'aria-live="polite"',
        "js/playground.js",
        "css/playground.css",
        '"wsPath": "/ws/playground/"',
        'max="1024"',  # the Free plan's per-request cap
        'href="/playground/">Playground</a>',
    ):
        assert needle in html, needle


def test_the_conversation_list_and_reopening_one(owner_client, owners_conversation, others_conversation):
    html = owner_client.get("/playground/").content.decode()
    assert escape(owners_conversation.title) in html and "private chat" not in html
    assert "<script>alert(1)</script>" not in html  # titles are escaped

    response = owner_client.get(f"/playground/c/{owners_conversation.pk}/")
    assert response.status_code == 200
    data = response.context["conversation_data"]
    assert data["system"] == "Be brief." and data["params"]["stop"] == ["\n"]
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html  # json_script escapes it
    assert 'aria-current="page"' in html


def test_another_users_conversation_is_404_everywhere(owner_client, others_conversation):
    pk = others_conversation.pk
    assert owner_client.get(f"/playground/c/{pk}/").status_code == 404
    assert owner_client.post(f"/playground/c/{pk}/rename/", {"title": "mine now"}).status_code == 404
    assert owner_client.post(f"/playground/c/{pk}/delete/").status_code == 404
    others_conversation.refresh_from_db()
    assert others_conversation.title == "other's private chat"


def test_rename_and_delete(owner_client, owners_conversation):
    pk = owners_conversation.pk
    response = owner_client.post(f"/playground/c/{pk}/rename/", {"title": "  Greetings  "})
    assert response.status_code == 302 and response["Location"] == f"/playground/c/{pk}/"
    owners_conversation.refresh_from_db()
    assert owners_conversation.title == "Greetings"

    owner_client.post(f"/playground/c/{pk}/rename/", {"title": "   "})
    owners_conversation.refresh_from_db()
    assert owners_conversation.title == "Greetings"

    assert owner_client.get(f"/playground/c/{pk}/rename/").status_code == 405
    response = owner_client.post(f"/playground/c/{pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/playground/"
    assert not Conversation.objects.filter(pk=pk).exists() and not Message.objects.exists()


def test_rename_and_delete_need_csrf(owner, owners_conversation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/playground/c/{owners_conversation.pk}/delete/").status_code == 403
    assert Conversation.objects.filter(pk=owners_conversation.pk).exists()


def test_first_user_message_titles_a_new_conversation(owner):
    conversation = services.conversation_create(user=owner, model=CHAT_MODEL)
    services.message_append(conversation=conversation, role="user", content="  Explain   transformers\nplease " * 5)
    conversation.refresh_from_db()
    assert conversation.title.startswith("Explain transformers please") and conversation.title.endswith("…")
    assert len(conversation.title) <= services.TITLE_MAX_CHARS + 1
    services.message_append(conversation=conversation, role="user", content="something else")
    conversation.refresh_from_db()
    assert conversation.title.startswith("Explain")


def test_cosine_similarity_matrix():
    matrix = services.cosine_similarity_matrix([[1, 0], [0, 2], [1, 1], [0, 0]])
    assert matrix[0] == [1.0, 0.0, 0.7071, 0.0]
    assert matrix[1][1] == 1.0 and matrix[3][3] == 0.0
    assert all(matrix[i][j] == matrix[j][i] for i in range(4) for j in range(4))


# --- embeddings endpoint -----------------------------------------------------------------------------

EMBEDDINGS = "/playground/embeddings/"


def post_json(client, body):
    return client.post(EMBEDDINGS, json.dumps(body), content_type="application/json")


@pytest.mark.model
def test_embeddings_need_a_session_and_csrf(client, owner):
    assert post_json(client, {"texts": ["a"]}).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert post_json(strict, {"texts": ["a"]}).status_code == 403
    page = strict.get("/playground/")
    token = page.cookies["csrftoken"].value
    response = strict.post(
        EMBEDDINGS, json.dumps({"texts": ["a"]}), content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200


@pytest.mark.model
def test_embeddings_give_dimensions_and_pairwise_similarity(owner, owner_client):
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell sharply today."]
    response = post_json(owner_client, {"model": EMBED_MODEL, "texts": [*texts, "   "]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dimensions"] == 384 and body["texts"] == texts and body["model"] == EMBED_MODEL
    matrix = body["similarity"]
    assert [row[i] for i, row in enumerate(matrix)] == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    assert matrix[0][1] > matrix[0][2] and matrix[0][1] == matrix[1][0]

    recorder().flush()
    (row,) = UsageRecord.objects.all()
    assert row.endpoint == "playground.embeddings" and row.user == owner and row.api_key is None
    assert row.prompt_tokens == body["usage"]["prompt_tokens"] > 0 and row.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"texts": []}, 400, None),
        ({"texts": "one"}, 400, None),
        ({"texts": ["x"] * 33}, 400, None),
        ({"model": CHAT_MODEL, "texts": ["x"]}, 400, "wrong_model_kind"),
        ({"model": "nope", "texts": ["x"]}, 404, "model_not_found"),
    ],
)
def test_bad_embedding_requests(owner_client, body, status, code):
    response = post_json(owner_client, body)
    assert response.status_code == status
    if code:
        assert response.json()["error"]["code"] == code


def test_embeddings_apply_the_plan_limits(owner, owner_client):
    owner.plan.requests_per_minute = 1
    owner.plan.save()
    assert post_json(owner_client, {"texts": []}).status_code == 400
    response = post_json(owner_client, {"texts": ["x"]})
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limit_exceeded"
