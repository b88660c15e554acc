"""Bad input never gets a 500 or an HTML page: each answers a 4xx in the shape of its API.

Regressions from the hardening audit (issue 10, "Bad input and faults").
"""

from __future__ import annotations

import json

import pytest

from tests.inference.test_openai_validation import GOOD_CHAT, assert_openai_error, post

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000


def native(client, path: str, body, key: str):
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, payload, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")


# --- /api/v1/classify's hypothesis_template ------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    ["{0:>200000}", "{} {", "} {}", "{label} {}", "{}{0}", "{{}}", "{!r}"],
)
def test_classify_template_with_other_braces_is_400_naming_the_field(client, owner_key, template):
    response = native(
        client, "/api/v1/classify", {"text": "x", "labels": ["a", "b"], "hypothesis_template": template}, owner_key
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "hypothesis_template" in response.json()


def test_classify_template_substitutes_only_the_literal_braces(client, owner_key, monkeypatch):
    from inference import services
    from inference.engine.types import EmbeddingResult

    seen: list[str] = []

    async def fake_embeddings(*, model, texts):
        seen.extend(texts)
        return EmbeddingResult(vectors=[[1.0, 0.0]] * len(texts), prompt_tokens=len(texts))

    monkeypatch.setattr(services, "embeddings_create", fake_embeddings)
    body = {"text": "t", "labels": ["a", "b"], "hypothesis_template": "About {}: {} (100%)"}
    response = native(client, "/api/v1/classify", body, owner_key)
    assert response.status_code == 200, response.content
    assert seen == ["t", "About a: a (100%)", "About b: b (100%)"]


# --- HTML 500s that become 4xx -----------------------------------------------------------------


@pytest.mark.parametrize("body", ["[]", '["a", "b"]', "5", '"text"', "null"])
def test_token_endpoint_with_a_non_object_body_is_400(client, db, body):
    response = client.post("/api/token/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "detail" in response.json() or response.json()


def test_metrics_with_a_non_ascii_bearer_is_403(client, db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer sécret-ü")
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_v1_without_a_slash_answers_openai_json(client, db, method):
    response = getattr(client, method)("/v1", content_type="application/json")
    error = assert_openai_error(response, 404)
    assert error["code"] == "unknown_url"


def test_v1_path_without_trailing_slash_is_not_redirected(client, owner_key):
    response = post(client, "/v1/chat/completions/", GOOD_CHAT, owner_key)
    assert response.status_code in (404, 405, 200, 400) and response.status_code != 500
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_deeply_nested_json_on_v1_is_400(client, owner_key, body):
    assert_openai_error(post(client, "/v1/chat/completions", body, owner_key), 400)
    assert_openai_error(post(client, "/v1/embeddings", body, owner_key), 400)


@pytest.mark.parametrize("path", ["/api/v1/generate", "/api/v1/classify"])
def test_deeply_nested_json_on_native_endpoints_is_400(client, owner_key, path):
    response = native(client, path, DEEP, owner_key)
    assert response.status_code == 400, response.content[:300]
    assert "detail" in response.json()


def test_deeply_nested_json_on_the_portal_api_is_400(owner_client):
    response = owner_client.post("/api/keys/", DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    response = owner_client.post("/api/token/", DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]


LONE = '"\\ud800 hello"'


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            '{"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": %s}]}',
            "messages[0].content",
        ),
        ("/v1/completions", '{"model": "SmolLM2-135M-Instruct", "prompt": %s}', "prompt"),
        ("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", "input": [%s]}', "input[0]"),
        ("/v1/chat/completions", '{"model": %s, "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ],
)
def test_lone_surrogates_on_v1_are_400(client, owner_key, path, body, param):
    error = assert_openai_error(post(client, path, body % LONE, owner_key), 400, type="invalid_request_error")
    assert error["param"] == param


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/generate", '{"prompt": %s}'),
        ("/api/v1/ask", '{"question": %s}'),
        ("/api/v1/classify", '{"text": %s, "labels": ["a", "b"]}'),
    ],
)
def test_lone_surrogates_on_native_endpoints_are_400(client, owner_key, path, body):
    response = native(client, path, body % LONE, owner_key)
    assert response.status_code == 400, response.content


def test_lone_surrogates_on_the_portal_api_are_400(owner_client):
    response = owner_client.post("/api/keys/", '{"name": ' + LONE + "}", content_type="application/json")
    assert response.status_code == 400, response.content


FAR = ["9999-12-31", "0001-01-01", "0001-01-05", "1-01-01", "10000-01-01", "2026-02-30"]


@pytest.mark.parametrize("start_or_end", ["start", "end"])
@pytest.mark.parametrize("value", FAR)
def test_out_of_range_dates_on_the_usage_page_and_export_are_400(owner_client, start_or_end, value):
    for path in ("/console/usage/", "/console/usage/export.csv"):
        response = owner_client.get(path, {start_or_end: value})
        assert response.status_code == 400, (path, response.status_code)
        response = owner_client.get(path, {"start": value, "end": value})
        assert response.status_code == 400, (path, response.status_code)


def test_operator_overview_with_far_future_dates_is_400(client, operator):
    client.force_login(operator)
    response = client.get("/console/operators/usage/", {"start": "9999-12-31", "end": "9999-12-31"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        {"start": "9999-12-31", "end": "9999-12-31"},
        {"end": "9999-12-31"},
        {"end": "0001-01-05"},
        {"start": "0001-01-01"},
    ],
)
def test_out_of_range_dates_on_the_usage_api_are_400(owner_api, query):
    response = owner_api.get("/api/usage/", query)
    assert response.status_code == 400, response.content
    assert response.json()


@pytest.mark.parametrize("body", [DEEP, '{"texts": ["\\ud800"]}'])
def test_playground_embeddings_reject_deep_json_and_lone_surrogates(owner_client, body):
    response = owner_client.post("/playground/embeddings/", body, content_type="application/json")
    assert_openai_error(response, 400, code="invalid_json")


@pytest.mark.parametrize("path", ["/api/v1/ask", "/api/v1/generate"])
def test_a_body_over_the_upload_limit_is_400_on_native_endpoints(client, owner_key, path, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = native(client, path, {"question": "x" * 5000, "prompt": "x" * 5000}, owner_key)
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == "The request body is too large."


def test_a_body_over_the_upload_limit_is_400_on_the_portal_api(owner_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = owner_client.post("/api/keys/", {"name": "x" * 5000}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "request_too_large"


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_unknown_api_paths_answer_json_404(owner_client, method):
    response = getattr(owner_client, method)("/api/keys/0.5/", content_type="application/json")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("logprobs", [0, 1, True, "yes"])
def test_logprobs_must_be_false_or_null(client, owner_key, logprobs):
    body = {**GOOD_CHAT, "logprobs": logprobs}
    assert_openai_error(post(client, "/v1/chat/completions", body, owner_key), 400, param="logprobs")


def test_a_newline_in_a_v1_path_is_an_openai_404(client, owner_key):
    response = client.get("/v1/models/%0Abad", HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert_openai_error(response, 404)


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5},
        {"name": "ok", "allowed_models": [5]},
        {"name": "ok", "expires_at": "9999-12-31T23:59:59-10:00"},
        {"name": "ok", "expires_at": "9999-12-31T23:59:59Z"},
    ],
)
def test_key_creation_rejects_numbers_for_strings_and_far_future_expiry(owner_api, body):
    response = owner_api.post("/api/keys/", body, format="json")
    assert response.status_code == 400, response.content


def test_key_rename_rejects_a_number(owner_api, owner):
    from accounts import services

    api_key, _ = services.api_key_create(user=owner, name="k")
    assert owner_api.patch(f"/api/keys/{api_key.pk}/", {"name": 5}, format="json").status_code == 400
