"""Operators' IP allow and deny lists, for the whole site and for the inference API."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.models import IpRule
from tests.inference.helpers import call


def rule(action: str, network: str, scope: str = "site") -> IpRule:
    return IpRule.objects.create(action=action, network=network, scope=scope)


def test_no_rules_let_everyone_in(client, db):
    assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 200


def test_a_site_deny_rule_refuses_pages_with_a_plain_403(client, db):
    rule("deny", "198.51.100.0/24")
    response = client.get("/login/", REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    assert "not allowed" in response.content.decode()
    assert client.get("/login/", REMOTE_ADDR="203.0.113.9").status_code == 200


def test_the_api_gets_openais_error_shape(owner_key):
    rule("deny", "127.0.0.1/32", scope="api")
    result = call("GET", "/v1/models", owner_key)  # the in-process client comes from 127.0.0.1
    assert result.status == 403
    error = result.json()["error"]
    assert error["code"] == "ip_not_allowed" and error["type"] == "permission_error"


def test_api_rules_leave_the_pages_alone(client, db):
    rule("allow", "203.0.113.0/24", scope="api")
    assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 200
    assert client.get("/v1/models", REMOTE_ADDR="198.51.100.7").status_code == 403
    assert client.get("/v1/models", REMOTE_ADDR="203.0.113.5").status_code == 401  # allowed: then needs a key


def test_an_allow_list_refuses_everyone_else_and_deny_wins(client, db):
    rule("allow", "203.0.113.0/24")
    rule("deny", "203.0.113.66/32")
    assert client.get("/login/", REMOTE_ADDR="203.0.113.5").status_code == 200
    assert client.get("/login/", REMOTE_ADDR="203.0.113.66").status_code == 403
    assert client.get("/login/", REMOTE_ADDR="192.0.2.1").status_code == 403
    assert client.get("/healthz", REMOTE_ADDR="192.0.2.1").status_code == 200  # probes are exempt


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_rules_apply_to_the_client_behind_the_configured_proxy(client, db):
    rule("deny", "198.51.100.7")
    forwarded = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 10.0.0.1"}
    assert client.get("/login/", **forwarded).status_code == 403
    assert client.get("/login/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 200


def test_rules_are_cached_and_a_change_applies_at_once(client, db, django_assert_num_queries):
    rule("deny", "198.51.100.7")
    assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 403
    with django_assert_num_queries(0):  # cached: no query for the rules
        client.get("/healthz")
        assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 403
    IpRule.objects.all().delete()
    assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 200
    disabled = rule("deny", "198.51.100.7")
    disabled.enabled = False
    disabled.save()
    assert client.get("/login/", REMOTE_ADDR="198.51.100.7").status_code == 200


def test_the_admin_validates_the_network(client, operator):
    client.force_login(operator)
    response = client.post(
        "/admin/accounts/iprule/add/", {"scope": "site", "action": "deny", "network": "not-an-ip", "enabled": "on"}
    )
    assert response.status_code == 200 and "is not an IP address" in response.content.decode()
    response = client.post(
        "/admin/accounts/iprule/add/", {"scope": "api", "action": "deny", "network": "2001:db8::1/64", "enabled": "on"}
    )
    assert response.status_code == 302
    assert IpRule.objects.get().network == "2001:db8::/64"


@pytest.mark.parametrize("path", ["/admin/accounts/iprule/", "/admin/accounts/iprule/add/"])
def test_only_operators_manage_ip_rules(client, owner, path):
    client.force_login(owner)
    assert client.get(path).status_code == 302  # to the admin login
