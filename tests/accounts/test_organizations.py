"""Organizations (issue 13, part 1): members and roles, signed invitations, keys billed to the
organization, and everything invisible to non-members, on the pages and in the JSON API."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import org_services, services
from accounts.models import ApiKey, Invitation, Membership, Organization, Plan
from tests.conftest import make_user
from tests.inference.helpers import call
from usage.models import UsageRecord
from usage.recorder import recorder

Role = Membership.Role


@pytest.fixture
def org(owner) -> Organization:
    return org_services.organization_create(user=owner, name="Acme")


def join(org: Organization, email: str, role: str = Role.MEMBER):
    user = make_user(email)
    Membership.objects.create(organization=org, user=user, role=role)
    return user


def membership(org: Organization, user) -> Membership:
    return Membership.objects.select_related("organization", "user").get(organization=org, user=user)


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def invite_link(message) -> str:
    return re.search(r"http://testserver(/console/invitations/[^/\s]+/)", message.body).group(1)


# --- pages ------------------------------------------------------------------------------------


def test_creating_an_organization_makes_the_creator_its_owner(owner_client, owner):
    response = owner_client.post("/console/orgs/", {"name": "Acme"})
    organization = Organization.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/console/orgs/{organization.pk}/"
    assert membership(organization, owner).role == Role.OWNER
    page = owner_client.get(f"/console/orgs/{organization.pk}/")
    assert page.status_code == 200 and b"Acme" in page.content and b"owner@example.com" in page.content


def test_an_organization_needs_a_name(owner_client):
    response = owner_client.post("/console/orgs/", {"name": ""})
    assert response.status_code == 400 and not Organization.objects.exists()


def test_the_invited_address_joins_through_the_e_mailed_link(client, owner_client, org):
    response = owner_client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "New@Example.com", "role": "admin"})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["new@example.com"] and "Acme" in message.subject
    link = invite_link(message)
    invitee = make_user("new@example.com")
    client.force_login(invitee)
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == f"/console/orgs/{org.pk}/"
    assert membership(org, invitee).role == Role.ADMIN
    assert client.post(link).status_code == 400  # used once


def test_accepting_an_invitation_needs_a_login(client, owner, org):
    invitation = Invitation.objects.create(organization=org, email="new@example.com", invited_by=owner)
    link = f"/console/invitations/{org_services.invitation_token(invitation)}/"
    response = client.get(link)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_invitation_cannot_be_accepted_with_another_account(client, owner, other_user, org):
    invitation = Invitation.objects.create(organization=org, email="new@example.com", invited_by=owner)
    client.force_login(other_user)
    response = client.post(f"/console/invitations/{org_services.invitation_token(invitation)}/")
    assert response.status_code == 400 and b"another e-mail address" in response.content
    assert not Membership.objects.filter(user=other_user).exists()


def test_an_expired_or_forged_invitation_is_refused(client, owner, org, monkeypatch):
    invitee = make_user("new@example.com")
    invitation = Invitation.objects.create(organization=org, email=invitee.email, invited_by=owner)
    token = org_services.invitation_token(invitation)
    client.force_login(invitee)
    assert client.post(f"/console/invitations/{token}x/").status_code == 400
    monkeypatch.setattr(org_services, "INVITATION_MAX_AGE_SECONDS", -1)
    response = client.post(f"/console/invitations/{token}/")
    assert response.status_code == 400 and b"expired" in response.content
    assert not Membership.objects.filter(user=invitee).exists()


def test_a_withdrawn_invitation_no_longer_works(client, owner_client, owner, org):
    invitee = make_user("new@example.com")
    invitation = Invitation.objects.create(organization=org, email=invitee.email, invited_by=owner)
    token = org_services.invitation_token(invitation)
    assert owner_client.post(f"/console/orgs/{org.pk}/invitations/{invitation.pk}/revoke/").status_code == 302
    client.force_login(invitee)
    assert client.post(f"/console/invitations/{token}/").status_code == 400


def test_members_cannot_invite_and_admins_cannot_invite_owners(client, org):
    member = join(org, "member@example.com")
    admin = join(org, "admin@example.com", Role.ADMIN)
    client.force_login(member)
    assert (
        client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "x@example.com", "role": "member"}).status_code
        == 403
    )
    client.force_login(admin)
    assert (
        client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "x@example.com", "role": "owner"}).status_code
        == 403
    )
    assert (
        client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "x@example.com", "role": "member"}).status_code
        == 302
    )
    assert Invitation.objects.get().role == Role.MEMBER


def test_inviting_a_member_again_is_a_form_error(owner_client, org):
    join(org, "member@example.com")
    response = owner_client.post(
        f"/console/orgs/{org.pk}/invitations/", {"email": "member@example.com", "role": "member"}
    )
    assert response.status_code == 400 and b"already a member" in response.content


def test_the_last_owner_can_neither_leave_nor_be_demoted(owner_client, owner, org):
    own = membership(org, owner)
    owner_client.post(f"/console/orgs/{org.pk}/leave/")
    owner_client.post(f"/console/orgs/{org.pk}/members/{own.pk}/role/", {"role": "member"})
    assert membership(org, owner).role == Role.OWNER
    second = join(org, "second@example.com")
    owner_client.post(f"/console/orgs/{org.pk}/members/{membership(org, second).pk}/role/", {"role": "owner"})
    assert membership(org, second).role == Role.OWNER
    assert owner_client.post(f"/console/orgs/{org.pk}/leave/").status_code == 302
    assert not Membership.objects.filter(organization=org, user=owner).exists()


def test_only_owners_change_roles(client, org):
    admin = join(org, "admin@example.com", Role.ADMIN)
    member = join(org, "member@example.com")
    client.force_login(admin)
    response = client.post(f"/console/orgs/{org.pk}/members/{membership(org, member).pk}/role/", {"role": "admin"})
    assert response.status_code == 403 and membership(org, member).role == Role.MEMBER


def test_admins_remove_members_but_not_owners(client, owner, org):
    admin = join(org, "admin@example.com", Role.ADMIN)
    member = join(org, "member@example.com")
    client.force_login(admin)
    assert client.post(f"/console/orgs/{org.pk}/members/{membership(org, owner).pk}/remove/").status_code == 403
    assert client.post(f"/console/orgs/{org.pk}/members/{membership(org, member).pk}/remove/").status_code == 302
    assert not Membership.objects.filter(user=member).exists()


def test_removing_a_member_revokes_the_keys_they_created_there(owner_client, org):
    member = join(org, "member@example.com")
    _, org_key = org_services.org_api_key_create(membership=membership(org, member), name="team")
    _, personal_key = services.api_key_create(user=member, name="mine")
    assert call("GET", "/v1/models", org_key).status == 200  # cached now: revocation must drop it
    owner_client.post(f"/console/orgs/{org.pk}/members/{membership(org, member).pk}/remove/")
    assert call("GET", "/v1/models", org_key).status == 401
    assert call("GET", "/v1/models", personal_key).status == 200


def test_members_see_their_own_org_keys_and_admins_see_all(client, owner, org):
    member = join(org, "member@example.com")
    other = join(org, "other-member@example.com")
    org_services.org_api_key_create(membership=membership(org, member), name="member-key")
    other_key, _ = org_services.org_api_key_create(membership=membership(org, other), name="other-key")
    client.force_login(member)
    page = client.get(f"/console/orgs/{org.pk}/")
    assert b"member-key" in page.content and b"other-key" not in page.content
    assert client.post(f"/console/orgs/{org.pk}/keys/{other_key.pk}/revoke/").status_code == 404
    client.force_login(owner)
    page = client.get(f"/console/orgs/{org.pk}/")
    assert b"member-key" in page.content and b"other-key" in page.content
    assert client.post(f"/console/orgs/{org.pk}/keys/{other_key.pk}/revoke/").status_code == 302
    other_key.refresh_from_db()
    assert other_key.is_revoked


def test_a_member_creates_an_org_key_attributed_to_them(client, org):
    member = join(org, "member@example.com")
    client.force_login(member)
    response = client.post(f"/console/orgs/{org.pk}/keys/", {"name": "ci"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    api_key = ApiKey.objects.get(name="ci")
    assert api_key.organization == org and api_key.user == member
    raw = re.search(rb'id="new-key" class="secret">([^<]+)<', response.content).group(1).decode()
    assert call("GET", "/v1/models", raw).status == 200
    keys_page = client.get("/console/keys/")
    assert b"ci" not in keys_page.content.split(b"Your keys")[1]  # not among the personal keys


def test_requests_on_an_org_key_are_billed_to_the_org_and_attributed_to_its_creator(org):
    member = join(org, "member@example.com")
    _, raw = org_services.org_api_key_create(membership=membership(org, member), name="team")
    assert call("GET", "/v1/models", raw).status == 200
    recorder().flush()
    (row,) = UsageRecord.objects.all()
    assert row.organization_id == org.pk and row.user_id == member.pk


def test_the_org_plan_limits_count_across_its_members_keys(owner, org):
    org.plan = Plan.objects.create(name="Team", requests_per_minute=2)
    org.save()
    member = join(org, "member@example.com")
    _, first = org_services.org_api_key_create(membership=membership(org, owner), name="a")
    _, second = org_services.org_api_key_create(membership=membership(org, member), name="b")
    _, personal = services.api_key_create(user=member, name="personal")
    assert call("GET", "/v1/models", first).status == 200
    result = call("GET", "/v1/models", second)
    assert result.status == 200 and result.headers["x-ratelimit-limit-requests"] == "2"
    assert call("GET", "/v1/models", second).status == 429
    assert call("GET", "/v1/models", personal).status == 200  # the member's own plan is separate


def test_changing_the_org_plan_reaches_cached_keys(owner, org):
    _, raw = org_services.org_api_key_create(membership=membership(org, owner), name="a")
    assert call("GET", "/v1/models", raw).headers["x-ratelimit-limit-requests"] != "7"
    org.plan = Plan.objects.create(name="Team", requests_per_minute=7)
    org.save()
    assert call("GET", "/v1/models", raw).headers["x-ratelimit-limit-requests"] == "7"


def test_the_owner_deletes_the_organization_and_its_keys_stop_working(client, owner, org):
    admin = join(org, "admin@example.com", Role.ADMIN)
    _, raw = org_services.org_api_key_create(membership=membership(org, admin), name="team")
    assert call("GET", "/v1/models", raw).status == 200
    client.force_login(admin)
    assert client.post(f"/console/orgs/{org.pk}/delete/").status_code == 403
    client.force_login(owner)
    assert client.post(f"/console/orgs/{org.pk}/delete/").status_code == 302
    assert not Organization.objects.exists()
    assert call("GET", "/v1/models", raw).status == 401


def test_settings_are_for_owners_and_admins(client, owner, org):
    member = join(org, "member@example.com")
    data = {"name": "Acme 2", "monthly_token_budget": "1000", "alert_webhook_url": "https://hooks.example.com/x"}
    client.force_login(member)
    assert client.post(f"/console/orgs/{org.pk}/settings/", data).status_code == 403
    assert b"hooks.example.com" not in client.get(f"/console/orgs/{org.pk}/").content
    client.force_login(owner)
    assert client.post(f"/console/orgs/{org.pk}/settings/", data).status_code == 302
    org.refresh_from_db()
    assert (org.name, org.monthly_token_budget, org.alert_webhook_url) == ("Acme 2", 1000, data["alert_webhook_url"])
    assert org.alert_webhook_secret.encode() in client.get(f"/console/orgs/{org.pk}/").content


def test_every_org_page_is_404_to_non_members(client, other_user, owner, org):
    admin = join(org, "admin@example.com", Role.ADMIN)
    key, _ = org_services.org_api_key_create(membership=membership(org, admin), name="team")
    invitation = Invitation.objects.create(organization=org, email="x@example.com", invited_by=owner)
    target = membership(org, admin).pk
    client.force_login(other_user)
    assert client.get(f"/console/orgs/{org.pk}/").status_code == 404
    assert b"Acme" not in client.get("/console/orgs/").content
    for path, data in [
        ("settings/", {"name": "mine"}),
        ("invitations/", {"email": "y@example.com", "role": "owner"}),
        (f"invitations/{invitation.pk}/revoke/", {}),
        (f"members/{target}/role/", {"role": "member"}),
        (f"members/{target}/remove/", {}),
        ("leave/", {}),
        ("delete/", {}),
        ("keys/", {"name": "sneaky"}),
        (f"keys/{key.pk}/revoke/", {}),
    ]:
        assert client.post(f"/console/orgs/{org.pk}/{path}", data).status_code == 404, path
    assert client.get(f"/console/usage/?org={org.pk}").status_code == 404
    assert client.get(f"/console/usage/export.csv?org={org.pk}").status_code == 404
    key.refresh_from_db()
    assert Organization.objects.get().name == "Acme" and key.is_active and Membership.objects.count() == 2


def test_an_org_member_or_key_is_404_through_another_org(client, owner, org):
    elsewhere = org_services.organization_create(user=owner, name="Elsewhere")
    stranger = join(elsewhere, "stranger@example.com")
    key, _ = org_services.org_api_key_create(membership=membership(elsewhere, stranger), name="far")
    client.force_login(owner)
    assert (
        client.post(f"/console/orgs/{org.pk}/members/{membership(elsewhere, stranger).pk}/remove/").status_code == 404
    )
    assert client.post(f"/console/orgs/{org.pk}/keys/{key.pk}/revoke/").status_code == 404


def test_personal_key_pages_do_not_reach_org_keys(owner_client, owner, org):
    key, _ = org_services.org_api_key_create(membership=membership(org, owner), name="team")
    assert owner_client.post(f"/console/keys/{key.pk}/revoke/").status_code == 404
    assert api_for(owner).delete(f"/api/keys/{key.pk}/").status_code == 404


# --- the org usage scope ------------------------------------------------------------------------


def _usage(user, org=None, tokens=10, model="m"):
    return UsageRecord.objects.create(
        user=user, organization=org, model=model, endpoint="chat.completions", status_code=200, prompt_tokens=tokens
    )


def test_the_usage_dashboard_has_an_org_scope(client, owner, org):
    member = join(org, "member@example.com")
    _usage(owner, org, model="owner-model")
    _usage(member, org, model="member-model")
    _usage(member, None, model="personal-model")
    client.force_login(owner)
    page = client.get(f"/console/usage/?org={org.pk}").content
    assert b"owner-model" in page and b"member-model" in page and b"personal-model" not in page
    assert b"By member" in page and b"member@example.com" in page
    client.force_login(member)
    page = client.get(f"/console/usage/?org={org.pk}").content
    assert b"member-model" in page and b"owner-model" not in page and b"personal-model" not in page
    personal = client.get("/console/usage/").content
    assert b"personal-model" in personal and b"member-model" not in personal
    csv = b"".join(client.get(f"/console/usage/export.csv?org={org.pk}").streaming_content)
    assert b"member-model" in csv and b"owner-model" not in csv


def test_the_usage_api_has_an_org_scope(owner, other_user, org):
    member = join(org, "member@example.com")
    _usage(owner, org, tokens=5)
    _usage(member, org, tokens=7)
    assert api_for(owner).get(f"/api/usage/?organization={org.pk}").json()["totals"]["prompt_tokens"] == 12
    assert api_for(member).get(f"/api/usage/?organization={org.pk}").json()["totals"]["prompt_tokens"] == 7
    by_member = api_for(owner).get(f"/api/usage/?organization={org.pk}&group_by=member").json()["data"]
    assert {(row["key"], row["prompt_tokens"]) for row in by_member} == {
        ("owner@example.com", 5),
        ("member@example.com", 7),
    }
    assert api_for(other_user).get(f"/api/usage/?organization={org.pk}").status_code == 404


# --- the JSON API -------------------------------------------------------------------------------


def test_the_api_creates_an_org_invites_and_the_invitee_accepts(owner):
    api = api_for(owner)
    created = api.post("/api/orgs/", {"name": "Acme"}, format="json")
    assert created.status_code == 201 and created.json()["role"] == "owner"
    org_id = created.json()["id"]
    assert [o["name"] for o in api.get("/api/orgs/").json()] == ["Acme"]
    invited = api.post(
        f"/api/orgs/{org_id}/invitations/", {"email": "new@example.com", "role": "member"}, format="json"
    )
    assert invited.status_code == 201
    assert [i["email"] for i in api.get(f"/api/orgs/{org_id}/invitations/").json()] == ["new@example.com"]
    token = invite_link(mail.outbox[0]).split("/")[-2]
    invitee = make_user("new@example.com")
    assert api_for(invitee).post("/api/invitations/accept/", {"token": token}, format="json").status_code == 201
    assert api_for(invitee).post("/api/invitations/accept/", {"token": token}, format="json").status_code == 400
    members = api.get(f"/api/orgs/{org_id}/members/").json()
    assert {(m["email"], m["role"]) for m in members} == {("owner@example.com", "owner"), ("new@example.com", "member")}


def test_the_api_manages_roles_members_and_org_keys(owner, org):
    member = join(org, "member@example.com")
    target = membership(org, member).pk
    api, member_api = api_for(owner), api_for(member)
    created = member_api.post(f"/api/orgs/{org.pk}/keys/", {"name": "ci", "monthly_token_budget": 500}, format="json")
    assert created.status_code == 201 and created.json()["key"].startswith("llmos_")
    assert created.json()["organization"] == org.pk and created.json()["monthly_token_budget"] == 500
    listed = api.get(f"/api/orgs/{org.pk}/keys/").json()
    assert [(k["name"], k["created_by"]) for k in listed] == [("ci", "member@example.com")]
    assert (
        member_api.patch(f"/api/orgs/{org.pk}/members/{target}/", {"role": "admin"}, format="json").status_code == 403
    )
    changed = api.patch(f"/api/orgs/{org.pk}/members/{target}/", {"role": "admin"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    own = membership(org, owner).pk
    demoted = api.patch(f"/api/orgs/{org.pk}/members/{own}/", {"role": "member"}, format="json")
    assert demoted.status_code == 400
    assert api.post(f"/api/orgs/{org.pk}/leave/").status_code == 400
    assert api.delete(f"/api/orgs/{org.pk}/members/{target}/").status_code == 204
    assert ApiKey.objects.get(name="ci").is_revoked


def test_the_api_updates_settings_for_managers_only(owner, org):
    member = join(org, "member@example.com")
    assert api_for(member).patch(f"/api/orgs/{org.pk}/", {"name": "x"}, format="json").status_code == 403
    assert api_for(member).get(f"/api/orgs/{org.pk}/").json()["alert_webhook_secret"] == ""
    response = api_for(owner).patch(f"/api/orgs/{org.pk}/", {"monthly_token_budget": 123}, format="json")
    assert response.status_code == 200 and response.json()["monthly_token_budget"] == 123
    assert response.json()["name"] == "Acme" and response.json()["alert_webhook_secret"]
    assert api_for(member).delete(f"/api/orgs/{org.pk}/").status_code == 403
    assert api_for(owner).delete(f"/api/orgs/{org.pk}/").status_code == 204


def test_every_org_api_endpoint_is_404_to_non_members(owner, other_user, org):
    admin = join(org, "admin@example.com", Role.ADMIN)
    key, _ = org_services.org_api_key_create(membership=membership(org, admin), name="team")
    invitation = Invitation.objects.create(organization=org, email="x@example.com", invited_by=owner)
    target = membership(org, admin).pk
    api = api_for(other_user)
    assert api.get("/api/orgs/").json() == []
    base = f"/api/orgs/{org.pk}"
    for method, path, data in [
        ("get", "/", None),
        ("patch", "/", {"name": "mine"}),
        ("delete", "/", None),
        ("get", "/members/", None),
        ("patch", f"/members/{target}/", {"role": "member"}),
        ("delete", f"/members/{target}/", None),
        ("post", "/leave/", None),
        ("get", "/invitations/", None),
        ("post", "/invitations/", {"email": "y@example.com", "role": "owner"}),
        ("delete", f"/invitations/{invitation.pk}/", None),
        ("get", "/keys/", None),
        ("post", "/keys/", {"name": "sneaky"}),
        ("delete", f"/keys/{key.pk}/", None),
    ]:
        response = getattr(api, method)(f"{base}{path}", data, format="json")
        assert response.status_code == 404, (method, path)
    key.refresh_from_db()
    assert key.is_active and Organization.objects.get().name == "Acme" and Membership.objects.count() == 2


def test_the_org_api_needs_authentication(org):
    assert APIClient().get(f"/api/orgs/{org.pk}/").status_code == 401


def test_the_schema_describes_the_org_api(client, db):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for path in (
        "/api/orgs/",
        "/api/orgs/{org_id}/",
        "/api/orgs/{org_id}/members/{membership_id}/",
        "/api/orgs/{org_id}/invitations/",
        "/api/orgs/{org_id}/keys/{key_id}/",
        "/api/invitations/accept/",
    ):
        assert path in paths, path
    assert "organization" in {p["name"] for p in paths["/api/usage/"]["get"]["parameters"]}


def test_the_org_plan_is_the_default_plan_until_operators_set_one(owner, org):
    cache.clear()
    data = api_for(owner).get(f"/api/orgs/{org.pk}/").json()
    assert data["plan"]["name"] == Plan.objects.get(is_default=True).name


def test_no_invitation_is_made_when_e_mail_cannot_be_sent(owner_client, org, settings):
    settings.DEBUG = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    response = owner_client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "new@example.com", "role": "member"})
    assert response.status_code == 400 and b"E-mail is not configured" in response.content
    assert not Invitation.objects.exists()


def test_ids_beyond_any_database_integer_are_404_not_500(client, owner, org):
    huge = 10**25
    api = api_for(owner)
    for path in (f"/api/orgs/{huge}/", f"/api/orgs/{org.pk}/members/{huge}/", f"/api/orgs/{org.pk}/keys/{huge}/"):
        assert api.delete(path).status_code == 404, path
    assert api.get(f"/api/usage/?organization={huge}").status_code == 404
    client.force_login(owner)
    assert client.get(f"/console/orgs/{huge}/").status_code == 404
    assert client.post(f"/console/orgs/{org.pk}/invitations/{huge}/revoke/").status_code == 404
    assert client.get(f"/console/usage/?org={huge}").status_code == 404


# --- audit log --------------------------------------------------------------------------------


def test_membership_changes_are_in_the_audit_log_of_every_member_and_nobody_else(owner, other_user, org):
    from accounts.org_selectors import org_ids_of
    from audit.models import AuditAction, AuditEvent
    from audit.selectors import audit_events_for_user

    member = join(org, "member@example.com")
    org_services.membership_role_change(actor=membership(org, owner), membership=membership(org, member), role="admin")
    _, _raw = org_services.org_api_key_create(membership=membership(org, member), name="team")
    org_services.membership_remove(actor=membership(org, owner), membership=membership(org, member))
    actions = set(AuditEvent.objects.filter(org_id=org.pk).values_list("action", flat=True))
    assert actions >= {
        AuditAction.ORG_CREATE,
        AuditAction.ORG_ROLE_CHANGE,
        AuditAction.API_KEY_CREATE,
        AuditAction.ORG_MEMBER_REMOVE,
    }
    removal = AuditEvent.objects.get(org_id=org.pk, action=AuditAction.ORG_MEMBER_REMOVE)
    assert removal.actor == owner and removal.subject == member and removal.metadata["keys_revoked"] == 1
    owner_sees = audit_events_for_user(user=owner, org_ids=org_ids_of(user=owner))
    assert owner_sees.filter(action=AuditAction.API_KEY_CREATE, actor=member).exists()
    outsider_sees = audit_events_for_user(user=other_user, org_ids=org_ids_of(user=other_user))
    assert not outsider_sees.filter(org_id=org.pk).exists()


def test_the_audit_page_shows_organization_events_to_members_only(owner_client, client, other_user, org):
    owner_client.post(f"/console/orgs/{org.pk}/invitations/", {"email": "new@example.com", "role": "member"})
    assert "new@example.com" in owner_client.get("/console/audit/").content.decode()
    client.force_login(other_user)
    assert "new@example.com" not in client.get("/console/audit/").content.decode()
