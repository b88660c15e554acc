"""Each hooked action writes exactly one audit event, with its actor, target, address and
request id, and never a secret (issue 13, part 3)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey, IpRule, Plan
from audit.models import AuditAction, AuditEvent
from tests.accounts.test_two_factor import enrol, next_code
from tests.audit.helpers import only_event, stored_text
from tests.conftest import PASSWORD

CLIENT = {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_REQUEST_ID": "req-audit-1"}


# --- API keys ---------------------------------------------------------------------------------


def test_creating_a_key_on_the_page_records_who_from_where_and_not_the_key(owner_client, owner):
    response = owner_client.post(reverse("keys"), {"name": "ci"}, **CLIENT)
    assert response.status_code == 200
    api_key = ApiKey.objects.get(user=owner, name="ci")
    event = only_event(action=AuditAction.API_KEY_CREATE)
    assert (event.actor, event.actor_repr, event.subject) == (owner, owner.username, owner)
    assert (event.target_type, event.target_id, event.target_repr) == ("accounts.apikey", str(api_key.pk), str(api_key))
    assert (event.ip, event.request_id) == ("203.0.113.5", "req-audit-1")
    assert event.metadata["prefix"] == api_key.prefix
    raw_key = response.context["new_key"]
    assert raw_key not in stored_text(event) and api_key.digest not in stored_text(event)


def test_renaming_a_key_through_the_api_records_old_and_new_names(owner_api, owner):
    api_key, _ = services.api_key_create(user=owner, name="old")
    response = owner_api.patch(f"/api/keys/{api_key.pk}/", {"name": "new"}, format="json", **CLIENT)
    assert response.status_code == 200
    event = only_event(action=AuditAction.API_KEY_RENAME)
    assert event.actor == owner and event.target_id == str(api_key.pk)
    assert event.metadata == {"from": "old", "to": "new"}
    assert (event.ip, event.request_id) == ("203.0.113.5", "req-audit-1")


def test_revoking_a_key_on_the_page_records_one_event(owner_client, owner):
    api_key, _ = services.api_key_create(user=owner, name="doomed")
    owner_client.post(reverse("key-revoke", args=[api_key.pk]), **CLIENT)
    owner_client.post(reverse("key-revoke", args=[api_key.pk]), **CLIENT)  # already revoked: nothing happens
    event = only_event(action=AuditAction.API_KEY_REVOKE)
    assert event.actor == owner and event.target_id == str(api_key.pk) and event.request_id == "req-audit-1"


def test_rotating_a_key_records_a_rotation_not_a_revocation(owner_api, owner):
    api_key, _ = services.api_key_create(user=owner, name="rotating")
    response = owner_api.post(f"/api/keys/{api_key.pk}/rotate/", **CLIENT)
    assert response.status_code == 201
    event = only_event(action=AuditAction.API_KEY_ROTATE)
    assert event.target_id == str(response.json()["id"]) and event.metadata["old_key_id"] == api_key.pk
    assert event.actor == owner and event.ip == "203.0.113.5"
    assert response.json()["key"] not in stored_text(event)
    assert not AuditEvent.objects.filter(action=AuditAction.API_KEY_REVOKE).exists()


def test_a_key_made_from_the_command_line_has_no_actor(owner):
    from django.core.management import call_command

    call_command("create_api_key", owner.username, "--name", "cli", stdout=open("/dev/null", "w"))
    event = only_event(action=AuditAction.API_KEY_CREATE)
    assert event.actor is None and event.subject == owner and event.ip is None and event.request_id == ""


def test_the_client_address_behind_a_trusted_proxy_is_recorded(owner_client, owner, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    owner_client.post(
        reverse("keys"), {"name": "proxied"}, REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.9"
    )
    assert only_event(action=AuditAction.API_KEY_CREATE).ip == "198.51.100.7"


# --- sign-ins ---------------------------------------------------------------------------------


def test_a_login_records_the_account_and_address(client, owner):
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD}, **CLIENT)
    assert response.status_code == 302
    event = only_event(action=AuditAction.LOGIN)
    assert (event.actor, event.subject, event.ip, event.request_id) == (owner, owner, "203.0.113.5", "req-audit-1")
    assert event.metadata == {"method": "password"}


def test_a_failed_login_records_the_name_tried_and_the_address_not_the_password(client, owner):
    wrong = "not-the-password-" + "9" * 8
    response = client.post(reverse("login"), {"username": owner.email, "password": wrong}, **CLIENT)
    assert response.status_code == 200
    event = only_event(action=AuditAction.LOGIN_FAILED)
    assert event.actor is None and event.subject == owner and event.target_id == str(owner.pk)
    assert (event.ip, event.request_id) == ("203.0.113.5", "req-audit-1")
    assert event.metadata == {"username": owner.email, "reason": "password", "via": "web"}
    assert wrong not in stored_text(event) and PASSWORD not in stored_text(event)
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()


def test_a_failed_login_for_an_unknown_account_keeps_the_name_only(client, db):
    client.post(reverse("login"), {"username": "nobody@example.com", "password": "whatever-123"}, **CLIENT)
    event = only_event(action=AuditAction.LOGIN_FAILED)
    assert event.subject is None and event.target_repr == "nobody@example.com" and event.target_id == ""
    assert "whatever-123" not in stored_text(event)


def test_jwt_logins_are_recorded_when_they_succeed_and_fail(owner):
    api = APIClient()
    body = {"username": owner.email, "password": PASSWORD}
    assert api.post("/api/token/", body, format="json", **CLIENT).status_code == 200
    event = only_event(action=AuditAction.LOGIN)
    assert event.actor == owner and event.metadata == {"method": "jwt"} and event.ip == "203.0.113.5"
    refused = api.post("/api/token/", {**body, "password": "guess-guess-1"}, format="json", **CLIENT)
    assert refused.status_code == 401
    failed = only_event(action=AuditAction.LOGIN_FAILED)
    assert failed.subject == owner and failed.metadata["via"] == "api" and failed.request_id == "req-audit-1"
    assert "guess-guess-1" not in stored_text(failed)


def test_two_factor_logins_record_the_wrong_code_and_then_the_login(client, owner):
    totp, _ = enrol(owner)
    client.post(reverse("login"), {"username": owner.email, "password": PASSWORD}, **CLIENT)
    assert not AuditEvent.objects.exists()  # the password alone does not sign in
    assert client.post(reverse("login-2fa"), {"code": "123456"}, **CLIENT).status_code == 400
    failed = only_event(action=AuditAction.LOGIN_FAILED)
    assert failed.subject == owner and failed.metadata["reason"] == "second_factor" and failed.ip == "203.0.113.5"
    assert client.post(reverse("login-2fa"), {"code": next_code(totp)}, **CLIENT).status_code == 302
    assert only_event(action=AuditAction.LOGIN).metadata == {"method": "two_factor"}


def test_a_wrong_jwt_code_is_a_failed_login(owner):
    enrol(owner)
    api = APIClient()
    body = {"username": owner.email, "password": PASSWORD, "otp": "000000"}
    assert api.post("/api/token/", body, format="json").status_code == 401
    assert only_event(action=AuditAction.LOGIN_FAILED).metadata["reason"] == "second_factor"
    assert not AuditEvent.objects.filter(action=AuditAction.LOGIN).exists()


# --- the admin --------------------------------------------------------------------------------


def _plan_form(plan: Plan, **changes) -> dict:
    data = {
        "name": plan.name,
        "requests_per_minute": plan.requests_per_minute,
        "tokens_per_minute": plan.tokens_per_minute,
        "tokens_per_day": plan.tokens_per_day,
        "max_tokens_per_request": plan.max_tokens_per_request,
        "max_prompt_tokens_per_request": plan.max_prompt_tokens_per_request,
        "max_concurrent_requests": plan.max_concurrent_requests,
        "allowed_models": "[]",
    }
    data.update(changes)
    return data


def test_a_plan_change_in_the_admin_records_old_and_new_limits_once(client, operator):
    plan = Plan.objects.create(name="pro")
    client.force_login(operator)
    response = client.post(f"/admin/accounts/plan/{plan.pk}/change/", _plan_form(plan, tokens_per_day=999), **CLIENT)
    assert response.status_code == 302, response.content[:2000]
    event = only_event(action=AuditAction.PLAN_CHANGE)
    assert event.actor == operator and event.target_repr == "pro" and event.ip == "203.0.113.5"
    assert event.metadata["changed"] == ["tokens_per_day"]
    assert event.metadata["values"] == {"tokens_per_day": [200_000, 999]}
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()  # no second, generic event


def test_creating_and_deleting_a_plan_in_the_admin(client, operator):
    client.force_login(operator)
    client.post("/admin/accounts/plan/add/", _plan_form(Plan(name="team")))
    plan = Plan.objects.get(name="team")
    assert only_event(action=AuditAction.PLAN_CREATE).metadata["values"]["requests_per_minute"] == 20
    client.post(f"/admin/accounts/plan/{plan.pk}/delete/", {"post": "yes"})
    assert not Plan.objects.filter(pk=plan.pk).exists()
    assert only_event(action=AuditAction.PLAN_DELETE).target_repr == "team"
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def _key_form(api_key: ApiKey, **changes) -> dict:
    data = {
        "name": api_key.name,
        "expires_at_0": "",
        "expires_at_1": "",
        "allowed_models": "[]",
        "allowed_ips": "[]",
        "requests_per_minute": "",
        "tokens_per_minute": "",
        "tokens_per_day": "",
    }
    data.update(changes)
    return data


def test_an_operator_changing_a_key_limit_is_recorded_for_its_owner(client, operator, owner):
    api_key, _ = services.api_key_create(user=owner, name="limited")
    client.force_login(operator)
    response = client.post(f"/admin/accounts/apikey/{api_key.pk}/change/", _key_form(api_key, tokens_per_day="5000"))
    assert response.status_code == 302, response.content[:3000]
    event = only_event(action=AuditAction.API_KEY_LIMITS_CHANGE)
    assert event.actor == operator and event.subject == owner
    assert event.metadata["values"] == {"tokens_per_day": [None, 5000]}
    assert api_key.digest not in stored_text(event)


def test_the_admin_revoke_action_records_the_operator(client, operator, owner):
    api_key, _ = services.api_key_create(user=owner, name="k")
    client.force_login(operator)
    client.post("/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [api_key.pk]})
    event = only_event(action=AuditAction.API_KEY_REVOKE)
    assert event.actor == operator and event.subject == owner


def test_moving_a_user_to_another_plan_is_a_plan_change(client, operator, owner):
    plan = Plan.objects.create(name="gold")
    client.force_login(operator)
    page = client.get(f"/admin/accounts/user/{owner.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "plan": plan.pk,
            "date_joined_0": owner.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": owner.date_joined.strftime("%H:%M:%S"),
            "is_active": "on",
            "email_verified": "on",
            "groups": [],
            "user_permissions": [],
        }
    )
    data = {key: value for key, value in data.items() if key not in ("last_login", "date_joined")}
    response = client.post(f"/admin/accounts/user/{owner.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event(action=AuditAction.USER_PLAN_CHANGE)
    assert event.actor == operator and event.subject == owner
    assert event.metadata["values"]["plan"] == [str(owner.plan), "gold"]


def test_registry_changes_name_the_upstream_key_but_never_store_it(client, operator):
    from inference.models import RegisteredModel
    from tests.inference.test_secrets import _change_form

    model = RegisteredModel.objects.create(
        name="remote", kind="chat", backend="upstream", upstream_url="http://gpu.test/v1", upstream_model="llama"
    )
    client.force_login(operator)
    url = f"/admin/inference/registeredmodel/{model.pk}/change/"
    form = _change_form(model, upstream_api_key="sk-very-secret-upstream", upstream_url="http://u:pw@gpu.test/v1")
    assert client.post(url, form, **CLIENT).status_code == 302
    event = only_event(action=AuditAction.MODEL_CHANGE)
    assert event.actor == operator and event.ip == "203.0.113.5"
    assert set(event.metadata["changed"]) == {"upstream_api_key", "upstream_url"}
    assert "upstream_api_key" not in event.metadata["values"]
    text = stored_text(event)
    assert "sk-very-secret-upstream" not in text and "pw@" not in text
    client.post(f"/admin/inference/registeredmodel/{model.pk}/delete/", {"post": "yes"})
    assert only_event(action=AuditAction.MODEL_DELETE).target_repr == "remote"
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_other_admin_actions_are_mirrored_from_the_admin_log(client, operator):
    client.force_login(operator)
    response = client.post(
        "/admin/accounts/iprule/add/", {"scope": "site", "action": "deny", "network": "192.0.2.0/24"}, **CLIENT
    )
    assert response.status_code == 302
    rule = IpRule.objects.get()
    event = only_event(action=AuditAction.ADMIN_ADD)
    assert (event.actor, event.target_type, event.target_id) == (operator, "accounts.iprule", str(rule.pk))
    assert (event.ip, event.request_id) == ("203.0.113.5", "req-audit-1")
    assert event.metadata == {"via": "admin", "changes": [{"added": {}}]}


@pytest.mark.parametrize("count", [1, 3])
def test_deleting_several_objects_in_the_admin_records_each(client, operator, count):
    rules = [IpRule.objects.create(scope="api", action="deny", network=f"192.0.2.{n}/32") for n in range(count)]
    client.force_login(operator)
    response = client.post(
        "/admin/accounts/iprule/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [rule.pk for rule in rules]},
    )
    assert response.status_code == 302 and not IpRule.objects.exists()
    events = AuditEvent.objects.filter(action=AuditAction.ADMIN_DELETE)
    assert sorted(event.target_id for event in events) == sorted(str(rule.pk) for rule in rules)
    assert all(event.actor == operator for event in events)


def test_deleting_several_keys_in_the_admin_records_key_deletions_only(client, operator, owner):
    keys = [services.api_key_create(user=owner, name=f"k{n}")[0] for n in range(2)]
    client.force_login(operator)
    client.post(
        "/admin/accounts/apikey/",
        {"action": "delete_selected", "post": "yes", "_selected_action": [key.pk for key in keys]},
    )
    assert AuditEvent.objects.filter(action=AuditAction.API_KEY_DELETE, subject=owner).count() == 2
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_an_operator_resetting_two_factor_is_recorded(client, operator, owner):
    enrol(owner)
    client.force_login(operator)
    client.post("/admin/accounts/user/", {"action": "reset_two_factor", "_selected_action": [owner.pk]})
    event = only_event(action=AuditAction.USER_TWO_FACTOR_RESET)
    assert event.actor == operator and event.subject == owner


# --- the account's own security settings ------------------------------------------------------


def test_changing_the_password_records_it_but_not_the_passwords(owner_client, owner):
    new = "brand-new-passphrase-31"
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        **CLIENT,
    )
    assert response.status_code == 302
    event = only_event(action=AuditAction.PASSWORD_CHANGE)
    assert event.actor == owner and event.ip == "203.0.113.5" and event.request_id == "req-audit-1"
    assert new not in stored_text(event) and PASSWORD not in stored_text(event)


def test_a_password_reset_by_link_is_recorded(client, owner, mailoutbox, settings):
    import re

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("password_reset"), {"email": owner.email})
    link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[0].body).group(1)
    form_url = client.get(link, follow=True).redirect_chain[-1][0]
    new = "another-long-passphrase-77"
    client.post(form_url, {"new_password1": new, "new_password2": new}, **CLIENT)
    event = only_event(action=AuditAction.PASSWORD_RESET)
    assert event.actor == owner and event.subject == owner and event.ip == "203.0.113.5"
    assert new not in stored_text(event)


def test_signing_out_everywhere_is_recorded(owner_client, owner_api, owner):
    owner_client.post(reverse("logout-everywhere"), **CLIENT)
    assert only_event(action=AuditAction.LOGOUT_EVERYWHERE).ip == "203.0.113.5"
    assert owner_api.post("/api/logout/everywhere/").status_code == 204
    assert AuditEvent.objects.filter(action=AuditAction.LOGOUT_EVERYWHERE, actor=owner).count() == 2


def test_turning_two_factor_on_and_off_is_recorded(owner_client, owner):
    import pyotp

    from accounts import two_factor

    owner_client.get(reverse("two-factor"))
    device = two_factor.totp_enrol_start(user=owner)
    totp = pyotp.TOTP(device.secret)
    owner_client.post(reverse("two-factor"), {"action": "confirm", "code": totp.now()}, **CLIENT)
    assert only_event(action=AuditAction.TWO_FACTOR_ENABLE).actor == owner
    owner_client.post(reverse("two-factor"), {"action": "disable", "code": next_code(totp)}, **CLIENT)
    event = only_event(action=AuditAction.TWO_FACTOR_DISABLE)
    assert event.actor == owner and event.request_id == "req-audit-1"
    assert device.secret not in stored_text(event)


def test_an_operator_setting_a_password_is_recorded_once_without_it(client, operator, owner):
    client.force_login(operator)
    new = "operator-chosen-passphrase-5"
    response = client.post(
        f"/admin/accounts/user/{owner.pk}/password/", {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content[:2000]
    event = only_event(action=AuditAction.ADMIN_CHANGE)
    assert (event.actor, event.target_type, event.target_id) == (operator, "accounts.user", str(owner.pk))
    assert event.subject == owner  # the owner sees that an operator changed their account
    assert new not in stored_text(event)
    assert not AuditEvent.objects.filter(action__in=[AuditAction.USER_UPDATE, AuditAction.USER_PLAN_CHANGE]).exists()
