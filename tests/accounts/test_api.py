"""The portal's JSON API: JWT tokens, /api/keys/ CRUD, isolation, schema and docs."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey
from tests.conftest import PASSWORD


def test_jwt_token_and_refresh_then_list_keys(owner):
    api = APIClient()
    tokens = api.post("/api/token/", {"username": owner.email, "password": PASSWORD}, format="json").json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api.get("/api/keys/").status_code == 200
    assert api.get("/api/me/").json()["plan"]["name"] == "Free"
    refreshed = APIClient().post("/api/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


def test_wrong_password_gets_no_token(owner):
    response = APIClient().post("/api/token/", {"username": owner.email, "password": "nope"}, format="json")
    assert response.status_code == 401


def test_api_requires_authentication(db):
    assert APIClient().get("/api/keys/").status_code == 401


def test_key_lifecycle_over_the_api(owner_api, owner):
    created = owner_api.post(
        "/api/keys/", {"name": "sdk", "allowed_ips": ["10.0.0.0/8"], "allowed_models": ["m"]}, format="json"
    )
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    body = created.json()
    raw_key, key_id = body["key"], body["id"]
    assert raw_key.startswith(body["prefix"]) and body["status"] == "active"

    listed = owner_api.get("/api/keys/").json()
    assert [item["id"] for item in listed] == [key_id]
    assert "key" not in listed[0] and "digest" not in listed[0]

    renamed = owner_api.patch(f"/api/keys/{key_id}/", {"name": "sdk-2"}, format="json")
    assert renamed.json()["name"] == "sdk-2"

    rotated = owner_api.post(f"/api/keys/{key_id}/rotate/")
    assert rotated.status_code == 201 and rotated.json()["key"] != raw_key
    assert owner_api.get(f"/api/keys/{key_id}/").json()["status"] == "revoked"

    new_id = rotated.json()["id"]
    revoked = owner_api.delete(f"/api/keys/{new_id}/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"


def test_api_validation_errors_are_400(owner_api):
    response = owner_api.post("/api/keys/", {"name": "", "allowed_ips": ["nope"]}, format="json")
    assert response.status_code == 400
    response = owner_api.post("/api/keys/", {"name": "x", "allowed_ips": ["nope"]}, format="json")
    assert response.status_code == 400 and "not an IP address" in str(response.json())


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [("get", "", None), ("patch", "", {"name": "stolen"}), ("delete", "", None), ("post", "rotate/", None)],
)
def test_nobody_can_reach_another_users_key_through_the_api(owner, other_user, method, suffix, payload):
    api_key, _ = services.api_key_create(user=owner, name="mine")
    api = APIClient()
    api.force_authenticate(other_user)
    response = getattr(api, method)(f"/api/keys/{api_key.pk}/{suffix}", payload, format="json")
    assert response.status_code == 404
    assert api.get("/api/keys/").json() == []
    api_key.refresh_from_db()
    assert api_key.name == "mine" and api_key.is_active
    assert ApiKey.objects.filter(user=other_user).count() == 0


def test_openapi_schema_documents_the_key_api(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/keys/" in schema["paths"] and "/api/keys/{id}/rotate/" in schema["paths"]


def test_swagger_ui_is_served_without_internet(client, db):
    page = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any("swagger-ui" in asset for asset in assets)
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert client.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js"))).status_code == 200


@override_settings(LOGIN_RATE_PER_ACCOUNT="2/h", LOGIN_RATE_PER_IP="100/h")
def test_token_endpoint_is_throttled_like_the_login_page(owner):
    api = APIClient()
    for _ in range(2):
        assert api.post("/api/token/", {"username": owner.email, "password": "nope"}, format="json").status_code == 401
    response = api.post("/api/token/", {"username": owner.email, "password": PASSWORD}, format="json")
    assert response.status_code == 429  # even the right password, while the account is throttled


def test_successful_token_requests_do_not_count(owner):
    api = APIClient()
    for _ in range(8):
        assert (
            api.post("/api/token/", {"username": owner.email, "password": PASSWORD}, format="json").status_code == 200
        )
