"""Optional TOTP two-factor authentication: enrol, verify at login (pages and JWT), recovery
codes, and required for staff when REQUIRE_STAFF_2FA is on."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import two_factor
from accounts.models import RecoveryCode, TotpDevice
from tests.conftest import PASSWORD


def next_code(totp: pyotp.TOTP) -> str:
    """The next step's code: enrolment spent the current one (a code is accepted once)."""
    return totp.at(int(time.time()) + totp.interval)


def enrol(user) -> tuple[pyotp.TOTP, list[str]]:
    device = two_factor.totp_enrol_start(user=user)
    totp = pyotp.TOTP(device.secret)
    codes = two_factor.totp_enrol_confirm(user=user, code=totp.now())
    assert codes is not None
    return totp, codes


def test_enrol_on_the_page_with_the_qr_then_a_code(owner_client, owner):
    page = owner_client.get(reverse("two-factor"))
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    html = page.content.decode()
    assert 'src="/console/security/2fa/qr.svg"' in html
    assert "<script" not in html.split("<main")[-1] and " style=" not in html and " onclick=" not in html
    qr = owner_client.get(reverse("two-factor-qr"))
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content
    secret = re.search(r"Secret: <code>(\w+)</code>", html).group(1)
    wrong = owner_client.post(reverse("two-factor"), {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 400 and not two_factor.has_two_factor(user=owner)
    done = owner_client.post(reverse("two-factor"), {"action": "confirm", "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and two_factor.has_two_factor(user=owner)
    shown = re.findall(r"<code>([0-9a-f]{8}-[0-9a-f]{8})</code>", done.content.decode())
    assert len(shown) == 10
    assert RecoveryCode.objects.filter(user=owner).count() == 10
    assert shown[0] not in str(list(RecoveryCode.objects.values_list("digest", flat=True)))  # only digests
    assert owner_client.get(reverse("two-factor-qr")).status_code == 404  # no secret once confirmed


def test_the_qr_and_page_show_only_my_own_secret(owner_client, owner, other_user):
    theirs = two_factor.totp_enrol_start(user=other_user)
    html = owner_client.get(reverse("two-factor")).content.decode()
    assert theirs.secret not in html
    assert theirs.secret.encode() not in owner_client.get(reverse("two-factor-qr")).content


def test_login_asks_for_the_second_factor(client, owner):
    totp, _ = enrol(owner)
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("login-2fa")
    assert client.get(reverse("console")).status_code == 302  # not signed in yet
    assert client.post(reverse("login-2fa"), {"code": "123456"}).status_code == 400
    response = client.post(reverse("login-2fa"), {"code": next_code(totp)})
    assert response.status_code == 302 and response["Location"] == reverse("console")
    assert client.get(reverse("console")).status_code == 200


def test_a_code_is_accepted_only_once(owner):
    totp, _ = enrol(owner)
    code = next_code(totp)
    assert two_factor.two_factor_verify(user=owner, code=code)
    assert not two_factor.two_factor_verify(user=owner, code=code)


def test_a_recovery_code_works_once(client, owner):
    _, codes = enrol(owner)
    client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert client.post(reverse("login-2fa"), {"code": codes[0]}).status_code == 302
    client.logout()
    client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert client.post(reverse("login-2fa"), {"code": codes[0]}).status_code == 400


def test_the_second_step_needs_the_password_step_first(client, owner):
    enrol(owner)
    assert client.get(reverse("login-2fa")).status_code == 302


def test_jwt_tokens_need_the_code_too(owner):
    totp, _ = enrol(owner)
    api = APIClient()
    body = {"username": owner.email, "password": PASSWORD}
    refused = api.post("/api/token/", body, format="json")
    assert refused.status_code == 401 and refused.json()["code"] == "otp_required"
    assert api.post("/api/token/", {**body, "otp": "000000"}, format="json").status_code == 401
    assert api.post("/api/token/", {**body, "otp": next_code(totp)}, format="json").status_code == 200


def test_turning_it_off_needs_a_code(owner_client, owner):
    totp, _ = enrol(owner)
    assert owner_client.post(reverse("two-factor"), {"action": "disable", "code": "000000"}).status_code == 400
    assert two_factor.has_two_factor(user=owner)
    response = owner_client.post(reverse("two-factor"), {"action": "disable", "code": next_code(totp)})
    assert response.status_code == 302 and not two_factor.has_two_factor(user=owner)


@override_settings(REQUIRE_STAFF_2FA=True)
def test_staff_must_enrol_when_the_setting_says_so(client, operator, owner):
    client.force_login(operator)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == reverse("two-factor")
    assert client.get(reverse("console")).status_code == 302
    page = client.get(reverse("two-factor"))
    assert page.status_code == 200 and "must use two-factor" in page.content.decode()
    enrol(operator)
    assert client.get("/admin/").status_code == 200
    other = client.__class__()
    other.force_login(owner)  # not staff: not required
    assert other.get(reverse("console")).status_code == 200


@override_settings(REQUIRE_STAFF_2FA=True)
def test_staff_cannot_turn_it_off_when_required(client, operator):
    totp, _ = enrol(operator)
    client.force_login(operator)
    response = client.post(reverse("two-factor"), {"action": "disable", "code": next_code(totp)})
    assert response.status_code == 400 and two_factor.has_two_factor(user=operator)


def test_the_admin_login_goes_through_the_portal_login(client, operator):
    enrol(operator)
    response = client.post("/admin/login/", {"username": operator.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client.get("/admin/").status_code == 302  # nothing was signed in by /admin/login/


def test_operators_can_reset_a_users_second_factor(client, operator, owner):
    enrol(owner)
    client.force_login(operator)
    response = client.post(
        "/admin/accounts/user/", {"action": "reset_two_factor", "_selected_action": [owner.pk]}, follow=True
    )
    assert response.status_code == 200
    assert not TotpDevice.objects.filter(user=owner).exists()


@pytest.mark.parametrize("path", ["/console/security/2fa/", "/console/security/2fa/qr.svg"])
def test_two_factor_pages_need_login(client, db, path):
    assert client.get(path).status_code == 302
