"""Events that arrive as Django signals: sign-ins (Django's user_logged_in / user_login_failed,
which simplejwt's token endpoint also sends on a wrong password) and every admin add, change and
delete (its LogEntry rows)."""

from __future__ import annotations

import json

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit import admin_mirror
from audit.models import AuditAction
from audit.services import audit_login_failure, audit_login_success

_ADMIN_ACTIONS = {ADDITION: AuditAction.ADMIN_ADD, CHANGE: AuditAction.ADMIN_CHANGE, DELETION: AuditAction.ADMIN_DELETE}


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit_login_success(user=user, request=request, method=getattr(request, "audit_login_method", "password"))


@receiver(user_login_failed)
def _login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    # Django has already masked the password; only the account name attempted is kept.
    username = credentials.get("username") or credentials.get("email") or ""
    audit_login_failure(username=str(username), request=request, reason="password")


@receiver(post_save, sender=LogEntry)
def _admin_logged(sender, instance: LogEntry, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created or instance.action_flag not in _ADMIN_ACTIONS:
        return
    content_type = instance.content_type
    target_type = f"{content_type.app_label}.{content_type.model}" if content_type else ""
    if admin_mirror.already_recorded(target_type, instance.object_id or ""):
        return  # the model's admin wrote a more precise event for this
    try:
        changes = json.loads(instance.change_message) if instance.change_message else []
    except ValueError:
        changes = instance.change_message
    admin_mirror.admin_event_record(
        action=_ADMIN_ACTIONS[instance.action_flag],
        actor=instance.user,
        target_type=target_type,
        target_id=instance.object_id or "",
        target_repr=instance.object_repr,
        changes=changes,
    )
