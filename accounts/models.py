from __future__ import annotations

import ipaddress

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class Plan(models.Model):
    """Limits a user's API usage. Enforcement reads these; operators edit them in the admin."""

    name = models.CharField(max_length=64, unique=True)
    requests_per_minute = models.PositiveIntegerField(default=20)
    tokens_per_minute = models.PositiveIntegerField(default=20_000)
    tokens_per_day = models.PositiveIntegerField(default=200_000)
    max_tokens_per_request = models.PositiveIntegerField(default=1024)
    # db_default too: rows written by code that predates a column (a rolling deploy) still insert.
    max_prompt_tokens_per_request = models.PositiveIntegerField(
        default=4096, db_default=4096, help_text="Longest prompt (in tokens) one request may send."
    )
    max_concurrent_requests = models.PositiveIntegerField(
        default=4, db_default=4, help_text="Requests one API key (or a playground user) may have running at once."
    )
    allowed_models = models.JSONField(default=list, blank=True, help_text="Model names; empty means all models.")
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_("Tokens per calendar month (UTC) for each user or organization on this plan; empty means none."),
    )
    knowledge_max_bytes = models.PositiveBigIntegerField(
        default=50_000_000,
        db_default=50_000_000,
        help_text=_("Total size of the documents a user may keep in knowledge bases."),
    )
    is_default = models.BooleanField(
        default=False, help_text="Given to new users at signup, and governs every user who has no plan."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_plan")
        ]

    def __str__(self) -> str:
        return self.name

    def allows_model(self, model_name: str) -> bool:
        return not self.allowed_models or model_name in self.allowed_models


class User(AbstractUser):
    email = models.EmailField(unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    email_verified = models.BooleanField(default=False)
    # Raised to sign the user out everywhere: sessions and JWTs carry the value they were issued with.
    auth_epoch = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    # Budget alerts (80 % and 100 % of a monthly budget) are also POSTed here, signed with the secret.
    alert_webhook_url = models.URLField(blank=True, default="", db_default="")
    alert_webhook_secret = models.CharField(max_length=64, blank=True, default="", db_default="", editable=False)

    def _get_session_auth_hash(self, secret=None) -> str:
        """Django's HMAC of the password hash, also bound to auth_epoch once it is raised (at 0 the
        hash is Django's own, so existing sessions survive the upgrade)."""
        if not self.auth_epoch:
            return super()._get_session_auth_hash(secret=secret)  # type: ignore[misc]
        return salted_hmac(
            "accounts.User.get_session_auth_hash",
            f"{self.password}:{self.auth_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class Organization(models.Model):
    """A team: members with roles, keys of its own, its plan and its monthly budget.

    Requests on an organization's keys count against the organization's plan (its limits per
    minute and day, and its monthly budget), and are attributed to the member who created the key."""

    name = models.CharField(max_length=100)
    plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="organizations",
        help_text=_("Empty: the default plan."),
    )
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_("Tokens per calendar month (UTC) for the whole organization; empty means the plan's."),
    )
    alert_webhook_url = models.URLField(blank=True, default="")
    alert_webhook_secret = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        MEMBER = "member", _("Member")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def manages(self) -> bool:
        """Owners and admins manage members and every key of the organization, and see all its usage."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


class Invitation(models.Model):
    """An invitation by e-mail; its link is signed and expires (accounts.org_services)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization}"


class ApiKey(models.Model):
    """An issued API key. The raw key is never stored: only its SHA-256 digest and a visible prefix.

    A key of an organization (`organization` set) is billed to the organization and attributed to
    `user`, the member who created it."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="Model names; empty means all.")
    allowed_ips = models.JSONField(default=list, blank=True, help_text="IP addresses or CIDR ranges; empty means any.")
    # Per-key overrides of the plan's limits; empty means "use the plan's".
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveIntegerField(null=True, blank=True)
    monthly_token_budget = models.PositiveBigIntegerField(
        null=True, blank=True, help_text=_("Tokens per calendar month (UTC) for this key; empty means none.")
    )
    rotated_from = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rotated_to"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired()

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired():
            return "expired"
        return "active"

    @property
    def status_label(self) -> str:
        """The status as the pages show it, in the page's language."""
        return str(API_KEY_STATUS_LABELS[self.status])

    def allows_ip(self, address: str) -> bool:
        if not self.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network, strict=False) for network in self.allowed_ips)

    def allows_model(self, model_name: str) -> bool:
        return not self.allowed_models or model_name in self.allowed_models


class TotpDevice(models.Model):
    """A user's authenticator app (TOTP, RFC 6238). Active once confirmed with a first code."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(default=0)  # a code is accepted once (no replay)

    def __str__(self) -> str:
        return f"TOTP for {self.user}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """A one-time code for when the authenticator is lost; only its SHA-256 digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "digest"])]


class IpRule(models.Model):
    """An operator's IP allow or deny rule (CIDR) for the whole site or only the inference API.

    A request whose client address matches a deny rule is refused; if allow rules exist for a
    scope, a request must match one of them. Deny wins over allow."""

    class Scope(models.TextChoices):
        SITE = "site", "Whole site"
        API = "api", "Inference API (/v1 and /api/v1)"

    class Action(models.TextChoices):
        ALLOW = "allow", "Allow"
        DENY = "deny", "Deny"

    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.SITE)
    action = models.CharField(max_length=8, choices=Action.choices)
    network = models.CharField(max_length=64, help_text="An IP address or CIDR range, e.g. 203.0.113.0/24.")
    note = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["scope", "action", "network"]
        verbose_name = "IP rule"

    def __str__(self) -> str:
        return f"{self.action} {self.network} ({self.scope})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        try:
            self.network = str(ipaddress.ip_network(self.network.strip(), strict=False))
        except ValueError as exc:
            raise ValidationError({"network": f"{self.network!r} is not an IP address or CIDR range."}) from exc


API_KEY_STATUS_LABELS = {"active": _("active"), "revoked": _("revoked"), "expired": _("expired")}
