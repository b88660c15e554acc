"""Users read their own audit log on /console/audit/, as CSV and through /api/audit/; another
person's events never show."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from audit.exports import safe_cell
from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_events_for_user
from audit.services import REDACTED, AuditTarget, audit_record, scrub

ORG_ID = 41


@pytest.fixture
def events(owner, other_user, operator):
    """The owner's key (theirs), an operator's change to it, and the other user's key and login."""
    mine, _ = services.api_key_create(user=owner, name="mine", actor=owner)
    audit_record(action=AuditAction.API_KEY_LIMITS_CHANGE, actor=operator, target=mine, metadata={"via": "admin"})
    theirs, _ = services.api_key_create(user=other_user, name="theirs-secret-name", actor=other_user)
    audit_record(action=AuditAction.LOGIN, actor=other_user, target=other_user)
    return mine, theirs


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_page_lists_my_events_and_an_operators_change_to_my_key(owner_client, events):
    response = owner_client.get(reverse("audit"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "API key created" in html and "API key limits changed" in html and "mine (" in html
    assert "an operator" in html and "operator@example.com" not in html
    assert "theirs-secret-name" not in html and "other@example.com" not in html
    assert "<script" not in html.split("<main")[-1] and " style=" not in html


def test_the_page_filters_by_action_and_day(owner_client, events):
    html = owner_client.get(reverse("audit"), {"action": AuditAction.API_KEY_LIMITS_CHANGE}).content.decode()
    assert "API key limits changed" in html and "<td>API key created" not in html
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    html = owner_client.get(reverse("audit"), {"start": tomorrow}).content.decode()
    assert "No events match." in html


def test_bad_filters_are_form_errors(owner_client, db):
    response = owner_client.get(reverse("audit"), {"start": "2030-01-02", "end": "2030-01-01"})
    assert response.status_code == 400 and "must not be after" in response.content.decode()
    assert owner_client.get(reverse("audit"), {"action": "nope"}).status_code == 400
    assert owner_client.get(reverse("audit-export"), {"start": "1999-01-01"}).status_code == 400


def test_the_page_needs_a_login(client, db):
    assert client.get(reverse("audit")).status_code == 302
    assert client.get(reverse("audit-export")).status_code == 302
    assert client.get("/api/audit/").status_code == 401


def test_the_navigation_links_to_the_audit_page(owner_client, db):
    assert f'href="{reverse("audit")}"' in owner_client.get(reverse("console")).content.decode()


def test_the_csv_holds_my_events_only_with_the_same_filters(owner_client, owner, events):
    response = owner_client.get(reverse("audit-export"), {"action": AuditAction.API_KEY_CREATE})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = _csv(response)
    assert rows[0][:3] == ["created_at", "action", "actor"]
    assert [row[1] for row in rows[1:]] == ["api_key.create"]
    assert rows[1][2] == owner.username
    everything = _csv(owner_client.get(reverse("audit-export")))
    actions = sorted(row[1] for row in everything[1:])  # force_login signed the owner in: a login
    assert actions == ["api_key.create", "api_key.limits_change", "auth.login"]
    assert "theirs-secret-name" not in str(everything)


def test_csv_cells_that_look_like_formulas_are_quoted(owner_client, owner):
    services.api_key_create(user=owner, name='=HYPERLINK("http://evil.test","x")', actor=owner)
    rows = _csv(owner_client.get(reverse("audit-export")))
    assert rows[1][5].startswith("'=HYPERLINK(")
    assert [safe_cell(value) for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", 7, None)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        7,
        "",
    ]


def test_the_api_lists_my_events_a_page_at_a_time(owner_api, owner, events):
    response = owner_api.get("/api/audit/", {"page_size": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    newest = body["results"][0]
    assert newest["action"] == "api_key.limits_change" and newest["actor"] == "an operator" and newest["ip"] is None
    filtered = owner_api.get("/api/audit/", {"action": "api_key.create"}).json()
    assert [row["target"] for row in filtered["results"]] == [str(events[0])]
    assert "theirs-secret-name" not in str(owner_api.get("/api/audit/").json())


def test_the_api_refuses_bad_filters_and_page_sizes(owner_api, db):
    assert owner_api.get("/api/audit/", {"start": "2030-01-02", "end": "2030-01-01"}).status_code == 400
    assert owner_api.get("/api/audit/", {"action": "made.up"}).status_code == 400
    for size in ("0", "201", "ten"):
        response = owner_api.get("/api/audit/", {"page_size": size})
        assert response.status_code == 400 and "page_size" in response.json()
    assert owner_api.get("/api/audit/", {"page": "9"}).status_code == 404


def test_another_users_events_are_out_of_reach(client, other_user, events):
    client.force_login(other_user)
    assert "mine (" not in client.get(reverse("audit")).content.decode()
    assert "mine (" not in str(_csv(client.get(reverse("audit-export"))))


def test_addresses_show_on_my_own_actions_and_on_failed_logins_on_my_account(owner_api, owner, operator, rf):
    failed = rf.get("/", REMOTE_ADDR="198.51.100.9")
    audit_record(action=AuditAction.LOGIN_FAILED, actor=None, target=owner, request=failed)
    audit_record(action=AuditAction.LOGIN, actor=owner, target=owner, request=rf.get("/", REMOTE_ADDR="198.51.100.10"))
    by_operator = rf.get("/", REMOTE_ADDR="10.9.9.9")
    audit_record(action=AuditAction.USER_PLAN_CHANGE, actor=operator, target=owner, request=by_operator)
    rows = {row["action"]: row for row in owner_api.get("/api/audit/").json()["results"]}
    assert (rows["auth.login_failed"]["ip"], rows["auth.login_failed"]["actor"]) == ("198.51.100.9", "")
    assert (rows["auth.login"]["ip"], rows["auth.login"]["actor"]) == ("198.51.100.10", owner.username)
    assert (rows["user.plan_change"]["ip"], rows["user.plan_change"]["actor"]) == (None, "an operator")


def test_the_audit_api_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/audit/"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {"action", "start", "end", "page"}
    assert {"200", "400", "401", "404"} <= set(operation["responses"])
    page_size = next(parameter for parameter in operation["parameters"] if parameter["name"] == "page_size")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 200)


def test_organization_events_show_to_the_organizations_members(owner, other_user):
    event = audit_record(
        action=AuditAction.ORG_MEMBER_ADD,
        actor=other_user,
        target=AuditTarget("orgs.membership", "7", "owner@example.com in Acme"),
        subject=owner,
        org_id=ORG_ID,
        metadata={"role": "member"},
    )
    other_org_event = audit_record(action=AuditAction.ORG_CHANGE, actor=other_user, org_id=ORG_ID + 1)
    assert event in audit_events_for_user(user=owner)  # the member added
    visible = list(audit_events_for_user(user=owner, org_ids=[ORG_ID]))
    assert event in visible and other_org_event not in visible
    assert event.org_id == ORG_ID and AuditEvent.objects.filter(org_id=ORG_ID).count() == 1


def test_details_never_keep_secrets():
    from accounts import keys

    raw_key = keys.generate_key()
    details = scrub(
        {
            "password": "p",
            "new_password1": "p",
            "upstream_api_key": "sk-x",
            "refresh_token": "t",
            "nested": [{"secret": "s", "note": raw_key}],
            "url": "https://user:hunter2@gpu.test/v1",
            "tokens_per_day": 5,
            "max_tokens_per_request": 9,
        }
    )
    assert details == {
        "password": REDACTED,
        "new_password1": REDACTED,
        "upstream_api_key": REDACTED,
        "refresh_token": REDACTED,
        "nested": [{"secret": REDACTED, "note": REDACTED}],
        "url": f"https://{REDACTED}@gpu.test/v1",
        "tokens_per_day": 5,
        "max_tokens_per_request": 9,
    }
