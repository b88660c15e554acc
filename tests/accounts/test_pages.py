from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts.models import ApiKey, Plan, User
from tests.conftest import PASSWORD


def test_signup_creates_user_on_default_plan_and_logs_in(client, db):
    response = client.post(
        reverse("signup"),
        {"email": "New@Example.com", "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("console")
    user = User.objects.get(email="new@example.com")
    assert user.plan == Plan.objects.get(is_default=True)
    assert user.check_password(PASSWORD)
    assert "Your plan: Free" in response.content.decode()
    assert "Requests per minute" in response.content.decode()


@pytest.mark.parametrize(
    ("password1", "password2", "error"),
    [
        ("short", "short", "too short"),
        ("password123", "password123", "too common"),
        (PASSWORD, PASSWORD + "x", "differ"),
    ],
)
def test_signup_rejects_bad_passwords_with_a_form_error(client, db, password1, password2, error):
    response = client.post(
        reverse("signup"), {"email": "a@example.com", "password1": password1, "password2": password2}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not User.objects.filter(email="a@example.com").exists()


def test_signup_rejects_duplicate_email(client, owner):
    response = client.post(
        reverse("signup"), {"email": "OWNER@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert "already exists" in response.content.decode()


@override_settings(SIGNUP_RATE_PER_IP="2/h")
def test_signups_are_throttled_per_ip(client, db):
    for index in range(2):
        client.post(reverse("signup"), {"email": f"u{index}@example.com", "password1": "x", "password2": "y"})
    response = client.post(reverse("signup"), {"email": "u9@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert not User.objects.filter(email="u9@example.com").exists()


def test_login_and_logout(client, owner):
    response = client.post(reverse("login"), {"username": "owner@example.com", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("console")
    assert response.context["user"] == owner
    response = client.post(reverse("logout"), follow=True)
    assert not response.context["user"].is_authenticated


def test_console_requires_login(client, db):
    response = client.get(reverse("console"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@override_settings(LOGIN_RATE_PER_ACCOUNT="3/h", LOGIN_RATE_PER_IP="100/h")
def test_failed_logins_are_throttled_per_account(client, owner):
    for _ in range(3):
        response = client.post(reverse("login"), {"username": owner.email, "password": "wrong"})
        assert response.status_code == 200
    response = client.post(reverse("login"), {"username": owner.email, "password": "wrong"})
    assert response.status_code == 429
    # While throttled even the right password is refused, so guessing can't go on.
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 429


@override_settings(LOGIN_RATE_PER_ACCOUNT="2/h")
def test_successful_logins_do_not_count_towards_the_throttle(client, owner):
    for _ in range(4):
        response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
        assert response.status_code == 302
        client.logout()


@override_settings(LOGIN_RATE_PER_IP="3/h", LOGIN_RATE_PER_ACCOUNT="100/h")
def test_failed_logins_are_throttled_per_ip(client, db):
    for index in range(3):
        client.post(reverse("login"), {"username": f"x{index}@example.com", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "y@example.com", "password": "wrong"})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_password_reset_by_emailed_link(client, owner):
    response = client.post(reverse("password_reset"), {"email": owner.email}, follow=True)
    assert response.status_code == 200
    assert len(mail.outbox) == 1 and owner.email in mail.outbox[0].to
    link = re.search(r"http://testserver(/password/reset/\S+/)", mail.outbox[0].body).group(1)
    response = client.get(link, follow=True)  # Django redirects to a token-less URL
    form_url = response.redirect_chain[-1][0]
    new_password = "another-long-passphrase-77"
    response = client.post(form_url, {"new_password1": new_password, "new_password2": new_password}, follow=True)
    assert "Password set" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(new_password)
    # The link works once.
    assert "not valid" in client.get(link, follow=True).content.decode()


def test_password_reset_for_unknown_email_sends_nothing_and_reveals_nothing(client, db):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"}, follow=True)
    assert response.status_code == 200 and len(mail.outbox) == 0


def test_password_change(owner_client, owner):
    new_password = "a-brand-new-passphrase-9"
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert "Password changed" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(new_password)


@override_settings(ACCOUNT_EMAIL_VERIFICATION=True)
def test_email_verification_activates_the_account(client, db):
    client.post(reverse("signup"), {"email": "v@example.com", "password1": PASSWORD, "password2": PASSWORD})
    user = User.objects.get(email="v@example.com")
    assert not user.is_active and not user.email_verified
    assert client.post(reverse("login"), {"username": "v@example.com", "password": PASSWORD}).status_code == 200
    link = re.search(r"http://testserver(/verify/\S+/)", mail.outbox[0].body).group(1)
    assert client.get(reverse("verify-email", args=["forged"])).status_code == 400
    client.get(link)
    user.refresh_from_db()
    assert user.is_active and user.email_verified
    response = client.post(reverse("login"), {"username": "v@example.com", "password": PASSWORD})
    assert response.status_code == 302


# --- key pages -------------------------------------------------------------------------------


def _create_key_on_page(client, name="web"):
    response = client.post(reverse("keys"), {"name": name})
    assert response.status_code == 200
    return re.search(r'id="new-key" class="secret">(llmos_\w+)<', response.content.decode()).group(1)


def test_key_page_shows_the_new_key_exactly_once(owner_client, owner):
    raw_key = _create_key_on_page(owner_client)
    api_key = ApiKey.objects.get(user=owner)
    assert api_key.prefix == raw_key[: len(api_key.prefix)]
    page = owner_client.get(reverse("keys")).content.decode()
    assert raw_key not in page and api_key.prefix in page


def test_key_form_errors_are_shown_not_500(owner_client):
    response = owner_client.post(reverse("keys"), {"name": "", "allowed_ips": "999.1.1.1"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required" in body and "not an IP address" in body


def test_key_page_rename_rotate_revoke(owner_client, owner):
    raw_key = _create_key_on_page(owner_client)
    api_key = ApiKey.objects.get(user=owner)
    owner_client.post(reverse("key-rename", args=[api_key.pk]), {"name": "renamed"})
    api_key.refresh_from_db()
    assert api_key.name == "renamed"

    response = owner_client.post(reverse("key-rotate", args=[api_key.pk]))
    new_raw = re.search(r'id="new-key" class="secret">(llmos_\w+)<', response.content.decode()).group(1)
    assert new_raw != raw_key
    api_key.refresh_from_db()
    assert api_key.is_revoked

    new_key = ApiKey.objects.get(user=owner, revoked_at__isnull=True)
    owner_client.post(reverse("key-revoke", args=[new_key.pk]))
    new_key.refresh_from_db()
    assert new_key.is_revoked


@pytest.mark.parametrize("action", ["key-rename", "key-revoke", "key-rotate"])
def test_nobody_can_act_on_another_users_key_through_pages(client, owner, other_user, action):
    from accounts import services

    api_key, _ = services.api_key_create(user=owner, name="mine")
    client.force_login(other_user)
    response = client.post(reverse(action, args=[api_key.pk]), {"name": "stolen"})
    assert response.status_code == 404
    api_key.refresh_from_db()
    assert api_key.name == "mine" and api_key.is_active
    assert "mine" not in client.get(reverse("keys")).content.decode()


def test_key_actions_need_post(owner_client, owner):
    from accounts import services

    api_key, _ = services.api_key_create(user=owner, name="mine")
    assert owner_client.get(reverse("key-revoke", args=[api_key.pk])).status_code == 405
