"""JWT refresh tokens rotate and are blacklisted; password change, deactivation and "log out
everywhere" end a user's tokens (and sessions), and nobody else's."""

from __future__ import annotations

from rest_framework.test import APIClient

from accounts import services
from tests.conftest import PASSWORD


def tokens_for(user) -> dict:
    response = APIClient().post("/api/token/", {"username": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    return response.json()


def refresh(token: str):
    return APIClient().post("/api/token/refresh/", {"refresh": token}, format="json")


def me(access: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api.get("/api/me/").status_code


def test_a_refresh_rotates_the_refresh_token_and_blacklists_the_old_one(owner):
    tokens = tokens_for(owner)
    first = refresh(tokens["refresh"])
    assert first.status_code == 200 and first.json()["refresh"] != tokens["refresh"]
    assert refresh(tokens["refresh"]).status_code == 401  # reused: blacklisted
    assert refresh(first.json()["refresh"]).status_code == 200


def test_a_password_change_ends_every_token(owner):
    tokens = tokens_for(owner)
    owner.set_password("another-long-password-99")
    owner.save()
    assert refresh(tokens["refresh"]).status_code == 401
    assert me(tokens["access"]) == 401


def test_the_password_change_page_ends_tokens_but_keeps_this_session(owner, client):
    tokens = tokens_for(owner)
    client.force_login(owner)
    response = client.post(
        "/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "brand-new-pass-phrase-7",
            "new_password2": "brand-new-pass-phrase-7",
        },
    )
    assert response.status_code == 302
    assert client.get("/console/").status_code == 200
    assert refresh(tokens["refresh"]).status_code == 401 and me(tokens["access"]) == 401


def test_deactivation_ends_refresh_tokens(owner):
    tokens = tokens_for(owner)
    owner.is_active = False
    owner.save()
    assert refresh(tokens["refresh"]).status_code == 401
    assert me(tokens["access"]) == 401


def test_log_out_everywhere_api_ends_my_tokens_and_not_anyone_elses(owner, other_user):
    mine, theirs = tokens_for(owner), tokens_for(other_user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {mine['access']}")
    assert api.post("/api/logout/everywhere/").status_code == 204
    assert me(mine["access"]) == 401 and refresh(mine["refresh"]).status_code == 401
    assert me(theirs["access"]) == 200 and refresh(theirs["refresh"]).status_code == 200
    assert tokens_for(owner)["access"]  # a fresh login works
    assert me(tokens_for(owner)["access"]) == 200


def test_log_out_everywhere_needs_authentication(db):
    assert APIClient().post("/api/logout/everywhere/").status_code == 401


def test_log_out_everywhere_button_ends_other_sessions_and_tokens(owner, other_user, client):
    from django.test import Client

    elsewhere, bystander = Client(), Client()
    elsewhere.force_login(owner)
    bystander.force_login(other_user)
    tokens = tokens_for(owner)
    client.force_login(owner)
    assert b"Log out everywhere" in client.get("/console/").content
    response = client.post("/logout/everywhere/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/console/").status_code == 302  # this browser too
    assert elsewhere.get("/console/").status_code == 302  # and the other one
    assert bystander.get("/console/").status_code == 200  # another user is untouched
    assert me(tokens["access"]) == 401
    owner.refresh_from_db()
    assert owner.auth_epoch == 1


def test_log_out_everywhere_page_needs_post(owner_client):
    assert owner_client.get("/logout/everywhere/").status_code == 405


def test_sessions_survive_the_upgrade_while_the_epoch_is_zero(owner, client):
    client.force_login(owner)
    services.api_key_cache_forget_for_users(user_ids=[owner.pk])  # an unrelated write changes nothing
    assert client.get("/console/").status_code == 200
