"""The OpenAPI schema (/api/schema/) describes what the server does (issue 10)."""

from __future__ import annotations

import pytest


@pytest.fixture
def schema(client, db) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_endpoint_does_not_401_a_request_with_an_api_key(client, owner_key):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert response.status_code == 200
    response = client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert response.status_code == 200


def test_v1_operations_are_described_with_api_key_security(schema):
    paths = schema["paths"]
    expected = {
        ("/v1/models", "get"),
        ("/v1/models/{model_id}", "get"),
        ("/v1/chat/completions", "post"),
        ("/v1/completions", "post"),
        ("/v1/embeddings", "post"),
    }
    for path, method in expected:
        operation = paths[path][method]
        assert operation["security"] == [{"ApiKeyAuth": []}]
        assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/OpenAIError"
        }
    chat = paths["/v1/chat/completions"]["post"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert schema["components"]["schemas"]["ChatCompletionRequest"]["required"] == ["model", "messages"]


def test_native_endpoints_require_an_api_key(schema):
    for path in ("/api/v1/generate", "/api/v1/ask", "/api/v1/classify"):
        assert schema["paths"][path]["post"]["security"] == [{"ApiKeyAuth": []}]


def test_request_bodies_are_json_only(schema):
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert set(operation["requestBody"]["content"]) == {"application/json"}


def test_revoking_a_key_is_documented_as_the_200_it_sends(schema, owner_api, owner):
    from accounts import services

    api_key, _ = services.api_key_create(user=owner, name="doomed")
    assert owner_api.delete(f"/api/keys/{api_key.pk}/").status_code == 200
    assert set(schema["paths"]["/api/keys/{id}/"]["delete"]["responses"]) >= {"200", "404"}
    assert "204" not in schema["paths"]["/api/keys/{id}/"]["delete"]["responses"]


def test_strict_string_fields_are_strings_and_reject_numbers(schema, client, owner_key):
    properties = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    assert properties["prompt"]["type"] == "string"
    response = client.post(
        "/api/v1/generate", {"prompt": 5}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {owner_key}"
    )
    assert response.status_code == 400 and "prompt" in response.json()


def test_form_bodies_are_refused(client, owner_key):
    response = client.post("/api/v1/generate", {"prompt": "hi"}, HTTP_AUTHORIZATION=f"Bearer {owner_key}")
    assert response.status_code == 415
