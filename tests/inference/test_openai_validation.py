"""The /v1 API's contract for bad input: OpenAI's error shape, the right status, never a 500.

None of these reach a model, so they run without loading one.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from accounts import services
from accounts.models import ApiKey

CHAT = "/v1/chat/completions"
GOOD_CHAT = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}


def post(client, path, body, key, **extra):
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, payload, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}", **extra)


def assert_openai_error(response, status: int, *, code=None, param=None, type=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    if type is not None:
        assert error["type"] == type
    return error


def test_missing_key_is_401(client, db):
    response = client.post(CHAT, json.dumps(GOOD_CHAT), content_type="application/json")
    assert_openai_error(response, 401, code="invalid_api_key")


def test_malformed_and_unknown_keys_are_401(client, db):
    assert_openai_error(post(client, CHAT, GOOD_CHAT, "sk-nope"), 401, code="invalid_api_key")
    from accounts.keys import generate_key

    assert_openai_error(post(client, CHAT, GOOD_CHAT, generate_key()), 401, code="invalid_api_key")


def test_revoked_key_is_rejected(client, owner, owner_key):
    services.api_key_revoke(api_key=ApiKey.objects.get(user=owner))
    assert_openai_error(client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {owner_key}"), 401)


def test_key_from_a_disallowed_ip_is_403(client, owner):
    _, raw_key = services.api_key_create(user=owner, name="office", allowed_ips=["10.0.0.0/8"])
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert_openai_error(response, 403, code="ip_not_allowed", type="permission_error")


def test_client_request_id_is_echoed(client, owner_key):
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {owner_key}", HTTP_X_REQUEST_ID="trace-123")
    assert response["x-request-id"] == "trace-123"


def test_models_list_and_detail(client, owner_key):
    response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {model["id"] for model in body["data"]} == {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"}
    assert all(model["object"] == "model" and isinstance(model["created"], int) for model in body["data"])
    detail = client.get("/v1/models/all-MiniLM-L6-v2", HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert detail.json()["id"] == "all-MiniLM-L6-v2"
    missing = client.get("/v1/models/gpt-9", HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert_openai_error(missing, 404, code="model_not_found")


def test_key_model_allow_list_hides_and_forbids_other_models(client, owner):
    _, raw_key = services.api_key_create(user=owner, name="embed-only", allowed_models=["all-MiniLM-L6-v2"])
    listed = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}").json()
    assert [model["id"] for model in listed["data"]] == ["all-MiniLM-L6-v2"]
    assert_openai_error(post(client, CHAT, GOOD_CHAT, raw_key), 403, code="model_not_allowed", param="model")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "SmolLM2-135M-Instruct"}, "messages"),
        ({**GOOD_CHAT, "messages": []}, "messages"),
        ({**GOOD_CHAT, "model": 123}, "model"),
        ({**GOOD_CHAT, "messages": "hi"}, "messages"),
        ({**GOOD_CHAT, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({**GOOD_CHAT, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({**GOOD_CHAT, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {**GOOD_CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content",
        ),
        ({**GOOD_CHAT, "temperature": "hot"}, "temperature"),
        ({**GOOD_CHAT, "temperature": 2.5}, "temperature"),
        ({**GOOD_CHAT, "top_p": 1.5}, "top_p"),
        ({**GOOD_CHAT, "max_tokens": 0}, "max_tokens"),
        ({**GOOD_CHAT, "max_tokens": "10"}, "max_tokens"),
        ({**GOOD_CHAT, "max_tokens": 1.5}, "max_tokens"),
        ({**GOOD_CHAT, "n": 10}, "n"),
        ({**GOOD_CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({**GOOD_CHAT, "stop": 7}, "stop"),
        ({**GOOD_CHAT, "stream": "yes"}, "stream"),
        ({**GOOD_CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
        ({**GOOD_CHAT, "presence_penalty": 3}, "presence_penalty"),
        ({**GOOD_CHAT, "seed": "42"}, "seed"),
        ({**GOOD_CHAT, "tools": [{"type": "function"}]}, "tools"),
        ({**GOOD_CHAT, "logprobs": True}, "logprobs"),
    ],
)
def test_bad_chat_parameters_are_400_with_the_param_named(client, owner_key, body, param):
    assert_openai_error(post(client, CHAT, body, owner_key), 400, param=param, type="invalid_request_error")


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"a string"', b"\xff\xfe", ""])
def test_unparseable_bodies_are_400(client, owner_key, raw):
    assert_openai_error(post(client, CHAT, raw, owner_key), 400, code="invalid_json")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_oversized_body_is_400(client, owner_key):
    body = {**GOOD_CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_openai_error(post(client, CHAT, body, owner_key), 400, code="request_too_large")


def test_unknown_model_is_404(client, owner_key):
    assert_openai_error(post(client, CHAT, {**GOOD_CHAT, "model": "gpt-9"}, owner_key), 404, code="model_not_found")


def test_wrong_kind_of_model_is_400(client, owner_key):
    error = assert_openai_error(post(client, CHAT, {**GOOD_CHAT, "model": "all-MiniLM-L6-v2"}, owner_key), 400)
    assert error["param"] == "model"
    response = post(client, "/v1/embeddings", {"model": "SmolLM2-135M-Instruct", "input": "x"}, owner_key)
    assert_openai_error(response, 400, param="model")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "all-MiniLM-L6-v2"}, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": []}, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": [""]}, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": [[1, 2, 3]]}, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_bad_embedding_requests_are_400(client, owner_key, body, param):
    assert_openai_error(post(client, "/v1/embeddings", body, owner_key), 400, param=param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "SmolLM2-135M-Instruct"}, "prompt"),
        ({"model": "SmolLM2-135M-Instruct", "prompt": ""}, "prompt"),
        ({"model": "SmolLM2-135M-Instruct", "prompt": [1, 2]}, "prompt"),
        ({"model": "SmolLM2-135M-Instruct", "prompt": "x", "echo": True}, "echo"),
    ],
)
def test_bad_completion_requests_are_400(client, owner_key, body, param):
    assert_openai_error(post(client, "/v1/completions", body, owner_key), 400, param=param)


def test_wrong_method_and_unknown_path_answer_json(client, owner_key):
    response = client.get(CHAT, HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert_openai_error(response, 405, code="method_not_allowed")
    assert_openai_error(client.get("/v1/nothing/here"), 404, code="unknown_url")


def test_native_endpoints_validate_and_need_a_key(client, owner_key, db):
    assert client.post("/api/v1/generate", {"prompt": "hi"}, content_type="application/json").status_code == 401
    response = client.post(
        "/api/v1/classify",
        {"text": "x", "labels": ["only-one"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {owner_key}",
    )
    assert response.status_code == 400 and "labels" in response.json()
    response = client.post(
        "/api/v1/generate", {"prompt": 5}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {owner_key}"
    )
    assert response.status_code == 400


def test_native_endpoints_are_in_the_openapi_schema(client, db):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"/api/v1/generate", "/api/v1/ask", "/api/v1/classify"} <= set(paths)
