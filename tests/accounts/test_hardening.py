"""Account hardening: verification links, the admin login throttle, throttles without Redis."""

from __future__ import annotations

import re

from django.core import mail
from django.test import override_settings
from django.urls import reverse

from accounts import throttle
from accounts.models import User
from tests.conftest import PASSWORD


@override_settings(ACCOUNT_EMAIL_VERIFICATION=True)
def test_the_verification_link_does_not_reactivate_a_deactivated_account(client, db):
    client.post(reverse("signup"), {"email": "v@example.com", "password1": PASSWORD, "password2": PASSWORD})
    link = re.search(r"http://testserver(/verify/\S+/)", mail.outbox[0].body).group(1)
    client.get(link)
    user = User.objects.get(email="v@example.com")
    assert user.is_active and user.email_verified
    user.is_active = False  # an operator deactivates the account
    user.save()
    response = client.get(link)
    assert response.status_code == 400
    user.refresh_from_db()
    assert not user.is_active
    assert client.post(reverse("login"), {"username": user.email, "password": PASSWORD}).status_code == 200


@override_settings(ACCOUNT_EMAIL_VERIFICATION=True)
def test_a_second_click_on_the_link_changes_nothing(client, db):
    client.post(reverse("signup"), {"email": "w@example.com", "password1": PASSWORD, "password2": PASSWORD})
    link = re.search(r"http://testserver(/verify/\S+/)", mail.outbox[0].body).group(1)
    assert client.get(link).status_code == 302
    assert client.get(link).status_code == 302
    assert User.objects.get(email="w@example.com").is_active


@override_settings(LOGIN_RATE_PER_ACCOUNT="3/h", LOGIN_RATE_PER_IP="100/h")
def test_the_admin_login_is_the_throttled_login_page(client, operator):
    """/admin/login/ checks no password itself: it sends people to the portal's login page, with
    its failed-login throttle (and the second factor)."""
    response = client.post("/admin/login/?next=/admin/accounts/", {"username": operator.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login/?next=%2Fadmin%2Faccounts%2F"
    assert client.get("/admin/").status_code == 302  # not signed in by that POST
    login_url = response["Location"]
    for _ in range(3):
        assert client.post(login_url, {"username": operator.email, "password": "wrong"}).status_code == 200
    assert client.post(login_url, {"username": operator.email, "password": PASSWORD}).status_code == 429


def test_staff_reach_the_admin_through_the_login_page(client, operator):
    response = client.get("/admin/login/")
    assert response.status_code == 302
    response = client.post(response["Location"], {"username": operator.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@override_settings(
    LOGIN_RATE_PER_ACCOUNT="2/h",
    LOGIN_RATE_PER_IP="100/h",
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"},
        "ratelimit": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
    },
)
def test_login_throttles_fall_back_to_per_process_counters_when_redis_is_down(client, owner, caplog):
    """Not switched off: the third failed attempt is refused by this process's own counters."""
    statuses = [
        client.post(reverse("login"), {"username": owner.email, "password": "wrong"}).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert "per-process counters" in caplog.text
    assert throttle.local_counters.down_until > 0


CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"


@override_settings(EMAIL_BACKEND=CONSOLE_MAIL, DEBUG=False)
def test_password_reset_is_refused_without_smtp_outside_debug(client, owner, capsys, caplog):
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 503
    assert "E-mail is not configured" in response.content.decode()
    assert response.context["form"].non_field_errors()
    output = capsys.readouterr()
    assert not re.search(r"/password/reset/\w+/[\w-]+/", output.out + output.err + caplog.text)  # no link


@override_settings(EMAIL_BACKEND=CONSOLE_MAIL, DEBUG=True)
def test_debug_still_prints_reset_links_for_development(client, owner, capsys):
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 302
    assert "/password/reset/" in capsys.readouterr().out


@override_settings(EMAIL_BACKEND=CONSOLE_MAIL, DEBUG=False, ACCOUNT_EMAIL_VERIFICATION=True)
def test_signup_needing_verification_is_refused_without_smtp(client, db, capsys):
    response = client.post(reverse("signup"), {"email": "n@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 503 and "E-mail is not configured" in response.content.decode()
    assert not User.objects.filter(email="n@example.com").exists()
    assert "/verify/" not in capsys.readouterr().out
