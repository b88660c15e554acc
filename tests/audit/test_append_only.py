"""Audit events are never changed or deleted: not by the model, its queries, nor the admin,
where operators only read them (with filters, search and a CSV of the selection)."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import User
from audit.models import AppendOnlyError, AuditAction, AuditEvent
from audit.services import audit_record


@pytest.fixture
def event(owner) -> AuditEvent:
    return audit_record(action=AuditAction.LOGIN, actor=owner, target=owner)


def test_an_event_cannot_be_saved_again(event):
    event.target_repr = "forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).target_repr == "owner@example.com"


def test_an_event_cannot_be_deleted(event):
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_events_cannot_be_updated_in_bulk(event):
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action=AuditAction.LOGIN_FAILED)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["action"])
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update_or_create(pk=event.pk, defaults={"action": AuditAction.LOGIN_FAILED})
    assert AuditEvent.objects.get(pk=event.pk).action == AuditAction.LOGIN


def test_deleting_an_account_keeps_its_events_with_the_name_recorded(owner):
    api_key, _ = services.api_key_create(user=owner, name="k", actor=owner)
    pk = owner.pk
    User.objects.filter(pk=pk).delete()
    event = AuditEvent.objects.get(action=AuditAction.API_KEY_CREATE)
    assert event.actor is None and event.subject is None and event.actor_repr == "owner@example.com"
    assert event.target_id == str(api_key.pk)


def test_operators_read_the_log_in_the_admin_but_cannot_change_it(client, operator, event):
    client.force_login(operator)
    listing = client.get("/admin/audit/auditevent/", {"action__exact": AuditAction.LOGIN, "q": "owner@"})
    assert listing.status_code == 200
    assert "owner@example.com" in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "auth.login_failed"}).status_code == 403
    )
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    refused = client.post(
        "/admin/audit/auditevent/", {"action": "delete_selected", "post": "yes", "_selected_action": [event.pk]}
    )
    assert refused.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk, action=AuditAction.LOGIN).exists()


def test_operators_download_the_selected_events_as_csv(client, operator, event):
    client.force_login(operator)
    response = client.post("/admin/audit/auditevent/", {"action": "export_csv", "_selected_action": [event.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("created_at,action,actor") and len(lines) == 2 and "auth.login" in lines[1]


def test_people_who_are_not_staff_cannot_open_the_log_in_the_admin(owner_client, event):
    assert owner_client.get("/admin/audit/auditevent/").status_code == 302


def test_on_postgresql_the_database_refuses_changes_too(event, owner):
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    for sql in (
        "UPDATE audit_auditevent SET target_repr = 'forged' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_id = NULL, action = 'auth.login_failed' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    with connection.cursor() as cursor:  # what deleting the user does (ON DELETE SET NULL) still works
        cursor.execute("UPDATE audit_auditevent SET actor_id = NULL, subject_id = NULL WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).actor_repr == owner.username
