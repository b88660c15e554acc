"""Admin actions in the audit log. Admins of the models that matter (plans, keys, users, the
model registry) use AuditedAdminMixin and write precise events with the values changed; every
other admin add, change and delete is mirrored from Django's LogEntry (audit.signals), and bulk
deletes, which Django logs without signals, by the site-wide delete action below."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.context import current_request
from audit.models import AuditAction, AuditEvent
from audit.services import AuditTarget, audit_record

_MARKS = "_audit_recorded_targets"


def _label(model: type[models.Model] | models.Model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def mark_recorded(target_type: str, target_id: str) -> None:
    """Note on the request being served that `target` already has its event."""
    request = current_request()
    if request is not None:
        marks = getattr(request, _MARKS, None)
        if marks is None:
            marks = set()
            setattr(request, _MARKS, marks)
        marks.add((target_type, str(target_id)))


def already_recorded(target_type: str, target_id: str) -> bool:
    request = current_request()
    return request is not None and (target_type, str(target_id)) in getattr(request, _MARKS, ())


def admin_event_record(
    *, action: AuditAction, actor, target_type: str, target_id: str, target_repr: str, changes: Any
) -> AuditEvent:
    """A generic admin event. A change to an account (its password, say) is shown to its owner."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    subject = None
    if target_type == _label(user_model) and str(target_id).isdigit() and action != AuditAction.ADMIN_DELETE:
        subject = user_model._default_manager.filter(pk=int(target_id)).first()
    return audit_record(
        action=action,
        actor=actor,
        target=AuditTarget(target_type, str(target_id), target_repr),
        subject=subject,
        metadata={"via": "admin", "changes": changes},
    )


def _value(obj: models.Model, field: models.Field) -> Any:
    if isinstance(field, models.ForeignKey):
        related = getattr(obj, field.name, None)
        return None if related is None else str(related)
    return field.value_from_object(obj)


class AuditedAdminMixin:
    """For a ModelAdmin: each save and delete writes one audit event naming the fields changed,
    with old and new values for the fields in `audit_values` (never secrets: only names for the
    rest)."""

    audit_create: AuditAction
    audit_change: AuditAction
    audit_delete: AuditAction
    audit_values: tuple[str, ...] = ()

    def audit_change_action(self, obj: models.Model, changed: list[str]) -> AuditAction:
        return self.audit_change

    def _fields(self, obj: models.Model) -> list[models.Field]:
        return [field for field in obj._meta.concrete_fields if not field.primary_key]

    def _record(self, request, obj: models.Model, action: AuditAction, metadata: dict) -> None:
        audit_record(
            action=action, actor=request.user, target=obj, request=request, metadata={"via": "admin", **metadata}
        )
        mark_recorded(_label(obj), str(obj.pk))

    def save_model(self, request, obj, form, change) -> None:
        before = type(obj)._default_manager.filter(pk=obj.pk).first() if change and obj.pk else None
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if before is None:
            values = {field.name: _value(obj, field) for field in self._fields(obj) if field.name in self.audit_values}
            self._record(request, obj, self.audit_create, {"values": values})
            return
        changed = [field for field in self._fields(obj) if _value(before, field) != _value(obj, field)]
        if not changed:
            return  # no field of its own changed (maybe its many-to-many ones: the LogEntry mirror says so)
        names = [field.name for field in changed]
        values = {
            field.name: [_value(before, field), _value(obj, field)]
            for field in changed
            if field.name in self.audit_values
        }
        self._record(request, obj, self.audit_change_action(obj, names), {"changed": names, "values": values})

    def log_deletions(self, request, queryset):
        # Django logs a deletion before doing it: the LogEntry mirror must leave these to us.
        for obj in queryset:
            mark_recorded(_label(obj), str(obj.pk))
        return super().log_deletions(request, queryset)

    def delete_model(self, request, obj) -> None:
        self._record(request, obj, self.audit_delete, {})
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self._record(request, obj, self.audit_delete, {})
        super().delete_queryset(request, queryset)  # type: ignore[misc]


@admin.action(permissions=["delete"], description=_("Delete selected %(verbose_name_plural)s"))
def delete_selected(modeladmin, request, queryset):
    """Django's delete action. Deleting several objects, Django logs them with bulk_create (no
    signal), so their events are written here once the deletion has happened."""
    doomed = [(str(obj.pk), str(obj)[:200]) for obj in queryset]
    response = django_delete_selected(modeladmin, request, queryset)
    if response is None and len(doomed) > 1:  # None: deleted (a page is the confirmation step)
        target_type = _label(queryset.model)
        for pk, text in doomed:
            if not already_recorded(target_type, pk):
                admin_event_record(
                    action=AuditAction.ADMIN_DELETE,
                    actor=request.user,
                    target_type=target_type,
                    target_id=pk,
                    target_repr=text,
                    changes=[],
                )
    return response


admin.site.add_action(delete_selected, "delete_selected")
