from __future__ import annotations

from accounts import services
from accounts.models import ApiKey


def test_admin_lists_keys_without_digest_and_revokes_them(client, operator, owner):
    api_key, _ = services.api_key_create(user=owner, name="to-revoke")
    client.force_login(operator)
    listing = client.get("/admin/accounts/apikey/").content.decode()
    assert "to-revoke" in listing and api_key.digest not in listing
    detail = client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content.decode()
    assert api_key.digest not in detail
    client.post("/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [api_key.pk]}, follow=True)
    assert ApiKey.objects.get(pk=api_key.pk).is_revoked


def test_admin_shows_plans_and_users(client, operator, owner):
    client.force_login(operator)
    assert "Free" in client.get("/admin/accounts/plan/").content.decode()
    assert owner.email in client.get("/admin/accounts/user/").content.decode()


def test_non_staff_cannot_open_admin(owner_client):
    assert owner_client.get("/admin/accounts/apikey/").status_code == 302
