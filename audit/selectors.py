"""Reading the audit log: what a user may see, and how they see it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from audit.models import AuditAction, AuditEvent

EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(9000, 12, 31)


def audit_events_for_user(
    *,
    user,
    org_ids: Iterable[int] = (),
    action: str = "",
    start: date | None = None,
    end: date | None = None,
) -> QuerySet[AuditEvent]:
    """Events `user` may see, newest first: those they did, those about their account and its
    keys, and those of the organizations in `org_ids`. Optionally one action and whole UTC days
    from `start` to `end` (both included)."""
    visible = Q(actor=user) | Q(subject=user)
    org_ids = list(org_ids)
    if org_ids:
        visible |= Q(org_id__in=org_ids)
    events = AuditEvent.objects.filter(visible)
    if action:
        events = events.filter(action=action)
    if start is not None:
        events = events.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
    if end is not None:
        events = events.filter(created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
    return events.select_related("actor").order_by("-created_at", "-id")


def _label(action: str) -> str:
    try:
        return str(AuditAction(action).label)
    except ValueError:
        return action


def audit_event_for_viewer(event: AuditEvent, *, viewer) -> dict[str, Any]:
    """An event as `viewer` (not an operator) sees it. Another person's address is theirs: the
    IP shows on the viewer's own actions and on anonymous attempts (failed sign-ins), and an
    operator who acted is named as such."""
    own = event.actor_id == viewer.pk
    anonymous = event.actor_id is None and not event.actor_repr
    if own or event.actor is None or not event.actor.is_staff:
        actor = event.actor_repr
    else:
        actor = gettext("an operator")
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "action": event.action,
        "action_label": _label(event.action),
        "actor": actor,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target": event.target_repr,
        "org_id": event.org_id,
        "ip": event.ip if own or anonymous else None,
        "request_id": event.request_id,
        "metadata": event.metadata,
    }


def audit_event_for_operator(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "action": event.action,
        "action_label": _label(event.action),
        "actor": event.actor_repr,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target": event.target_repr,
        "org_id": event.org_id,
        "ip": event.ip,
        "request_id": event.request_id,
        "metadata": event.metadata,
    }
