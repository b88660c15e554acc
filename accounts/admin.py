from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts import services
from accounts.models import ApiKey, Invitation, IpRule, Membership, Organization, Plan, User
from audit.admin_mirror import AuditedAdminMixin
from audit.models import AuditAction
from audit.services import audit_record

_PLAN_LIMITS = (
    "name",
    "requests_per_minute",
    "tokens_per_minute",
    "tokens_per_day",
    "max_tokens_per_request",
    "max_prompt_tokens_per_request",
    "max_concurrent_requests",
    "allowed_models",
    "is_default",
)


@admin.register(Plan)
class PlanAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_create, audit_change, audit_delete = AuditAction.PLAN_CREATE, AuditAction.PLAN_CHANGE, AuditAction.PLAN_DELETE
    audit_values = _PLAN_LIMITS
    list_display = [
        "name",
        "requests_per_minute",
        "tokens_per_minute",
        "tokens_per_day",
        "max_tokens_per_request",
        "max_prompt_tokens_per_request",
        "max_concurrent_requests",
        "monthly_token_budget",
        "is_default",
    ]


@admin.action(description="Reset two-factor authentication (the user sets it up again)")
def reset_two_factor(modeladmin, request, queryset):
    from accounts import two_factor

    for user in queryset:
        two_factor.two_factor_disable(user=user)
        audit_record(action=AuditAction.USER_TWO_FACTOR_RESET, actor=request.user, target=user, request=request)
    modeladmin.message_user(
        request, f"Two-factor authentication reset for {queryset.count()} user(s).", messages.SUCCESS
    )


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    audit_create, audit_change, audit_delete = AuditAction.USER_CREATE, AuditAction.USER_UPDATE, AuditAction.USER_DELETE
    audit_values = ("username", "email", "plan", "is_active", "is_staff", "is_superuser", "email_verified")

    def audit_change_action(self, obj, changed):
        return AuditAction.USER_PLAN_CHANGE if "plan" in changed else AuditAction.USER_UPDATE

    actions = [reset_two_factor]
    list_display = ["username", "email", "plan", "is_active", "email_verified", "is_staff", "date_joined"]
    list_filter = ["plan", "is_active", "is_staff", "email_verified"]
    list_select_related = ["plan"]
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Plan", {"fields": ("plan", "email_verified")}),
        ("Budget alerts", {"fields": ("alert_webhook_url",)}),
    )


@admin.action(description="Revoke selected keys")
def revoke_keys(modeladmin, request, queryset):
    count = 0
    for api_key in queryset.filter(revoked_at__isnull=True):
        services.api_key_revoke(api_key=api_key, actor=request.user)
        count += 1
    modeladmin.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Operators see and revoke keys; the digest is never shown and keys are never created here."""

    audit_create, audit_change, audit_delete = (
        AuditAction.API_KEY_CREATE,
        AuditAction.API_KEY_UPDATE,
        AuditAction.API_KEY_DELETE,
    )
    audit_values = ("name", "expires_at", "allowed_models", "allowed_ips", *services.LIMIT_OVERRIDES)

    def audit_change_action(self, obj, changed):
        if set(changed) & set(services.LIMIT_OVERRIDES):
            return AuditAction.API_KEY_LIMITS_CHANGE
        return AuditAction.API_KEY_RENAME if changed == ["name"] else AuditAction.API_KEY_UPDATE

    list_display = ["name", "prefix", "user", "organization", "status", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user", "organization"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["name", "prefix", "user__email"]
    exclude = ["digest"]
    readonly_fields = ["user", "organization", "prefix", "created_at", "revoked_at", "last_used_at", "rotated_from"]
    actions = [revoke_keys]

    def has_add_permission(self, request) -> bool:
        return False  # keys are issued by their owner (or `manage.py create_api_key`) and shown once


@admin.register(IpRule)
class IpRuleAdmin(admin.ModelAdmin):
    """IP allow/deny lists. Careful: an allow list for the whole site that leaves out your own
    address locks you out of this admin too (remove the rule from the shell)."""

    list_display = ["network", "action", "scope", "enabled", "note", "created_at"]
    list_filter = ["scope", "action", "enabled"]
    search_fields = ["network", "note"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


class InvitationInline(admin.TabularInline):
    model = Invitation
    extra = 0
    fields = ["email", "role", "invited_by", "created_at", "accepted_at"]
    readonly_fields = ["email", "role", "invited_by", "created_at", "accepted_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # invitations are sent by owners and admins, with a signed link


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Operators choose an organization's plan; its members manage the rest in the console."""

    list_display = ["name", "plan", "monthly_token_budget", "created_at"]
    list_filter = ["plan"]
    list_select_related = ["plan"]
    search_fields = ["name", "memberships__user__email"]
    inlines = [MembershipInline, InvitationInline]
