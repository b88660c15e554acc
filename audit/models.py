"""The audit log: append-only records of security-relevant actions (who did what to what,
when, from where). Rows are written by audit.services.audit_record and never changed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete an audit event."""


class AuditAction(models.TextChoices):
    API_KEY_CREATE = "api_key.create", _("API key created")
    API_KEY_RENAME = "api_key.rename", _("API key renamed")
    API_KEY_ROTATE = "api_key.rotate", _("API key rotated")
    API_KEY_REVOKE = "api_key.revoke", _("API key revoked")
    API_KEY_LIMITS_CHANGE = "api_key.limits_change", _("API key limits changed")
    API_KEY_UPDATE = "api_key.update", _("API key settings changed")
    API_KEY_DELETE = "api_key.delete", _("API key deleted")
    PLAN_CREATE = "plan.create", _("Plan created")
    PLAN_CHANGE = "plan.change", _("Plan changed")
    PLAN_DELETE = "plan.delete", _("Plan deleted")
    USER_CREATE = "user.create", _("Account created by an operator")
    USER_PLAN_CHANGE = "user.plan_change", _("Account plan changed")
    USER_UPDATE = "user.update", _("Account changed by an operator")
    USER_DELETE = "user.delete", _("Account deleted")
    USER_TWO_FACTOR_RESET = "user.two_factor_reset", _("Two-factor authentication reset by an operator")
    LOGIN = "auth.login", _("Signed in")
    LOGIN_FAILED = "auth.login_failed", _("Failed sign-in")
    PASSWORD_CHANGE = "auth.password_change", _("Password changed")
    PASSWORD_RESET = "auth.password_reset", _("Password reset by e-mail link")
    LOGOUT_EVERYWHERE = "auth.logout_everywhere", _("Signed out everywhere")
    TWO_FACTOR_ENABLE = "auth.two_factor_enable", _("Two-factor authentication turned on")
    TWO_FACTOR_DISABLE = "auth.two_factor_disable", _("Two-factor authentication turned off")
    ORG_CREATE = "org.create", _("Organization created")
    ORG_CHANGE = "org.change", _("Organization changed")
    ORG_DELETE = "org.delete", _("Organization deleted")
    ORG_INVITE = "org.invite", _("Invitation to an organization sent")
    ORG_MEMBER_ADD = "org.member_add", _("Organization member added")
    ORG_MEMBER_REMOVE = "org.member_remove", _("Organization member removed")
    ORG_ROLE_CHANGE = "org.role_change", _("Organization member role changed")
    MODEL_CREATE = "model.create", _("Model registered")
    MODEL_CHANGE = "model.change", _("Model changed")
    MODEL_DELETE = "model.delete", _("Model removed")
    ADMIN_ADD = "admin.add", _("Admin: object added")
    ADMIN_CHANGE = "admin.change", _("Admin: object changed")
    ADMIN_DELETE = "admin.delete", _("Admin: object deleted")


class AuditEventQuerySet(models.QuerySet):
    """Reads only: bulk updates and deletes are refused like the row methods are."""

    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("Audit events cannot be changed.")

    def update_or_create(self, defaults=None, create_defaults=None, **kwargs):
        raise AppendOnlyError("Audit events cannot be changed.")

    update.queryset_only = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]


class AuditEvent(models.Model):
    """One thing that happened. `actor` did `action` to `target` (type, id and its name at the
    time); `subject` is the account the event concerns (a key's owner, the account signed in
    to), so its owner sees it; `org_id` is the organization it belongs to, if any."""

    action = models.CharField(_("action"), max_length=64, choices=AuditAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_repr = models.CharField(_("actor (as recorded)"), max_length=254, blank=True)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("account concerned"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    target_type = models.CharField(_("target type"), max_length=100, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=200, blank=True)
    # No foreign key yet: organizations live in another app (a plain indexed id, kept after deletion).
    org_id = models.PositiveBigIntegerField(_("organization id"), null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True, db_index=True)
    metadata = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["actor", "-created_at"], name="audit_actor_time"),
            models.Index(fields=["subject", "-created_at"], name="audit_subject_time"),
            models.Index(fields=["org_id", "-created_at"], name="audit_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_repr}".strip()

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")
