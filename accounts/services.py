"""Writes for accounts and API keys. Views call these; they hold the rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import keys
from accounts.exceptions import (
    ApiKeyLimitReached,
    ExpiredApiKey,
    InactiveAccount,
    IpNotAllowed,
    MalformedApiKey,
    RevokedApiKey,
    UnknownApiKey,
)
from accounts.models import ApiKey, Organization, Plan, User
from audit.models import AuditAction
from audit.services import audit_record
from llmos_portal.db import db_sync_to_async


def default_plan() -> Plan | None:
    """The default plan row (given at signup), or None when operators have none. Users without a
    plan are still limited: see accounts.selectors.plan_for_user."""
    return Plan.objects.filter(is_default=True).first()


# Backends that don't deliver mail: they print it (with its links) to the log, or drop it.
_NON_DELIVERING_EMAIL_BACKENDS = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
)
EMAIL_NOT_CONFIGURED_MESSAGE = gettext_lazy(
    "E-mail is not configured on this server, so no link can be sent. Ask an operator (they set EMAIL_HOST)."
)


def email_can_be_sent() -> bool:
    """False when no real mail backend is configured and DEBUG is off: links to reset a password
    or confirm an address must then not be sent (the console backend would print them to the log)."""
    return settings.DEBUG or settings.EMAIL_BACKEND not in _NON_DELIVERING_EMAIL_BACKENDS


def user_signup(*, email: str, password: str, verified: bool = False) -> User:
    """Create a user on the default plan. Username is the e-mail address (normalised)."""
    email = User.objects.normalize_email(email).strip()
    user = User(username=email.lower(), email=email.lower(), plan=default_plan(), email_verified=verified)
    user.set_password(password)
    if settings.ACCOUNT_EMAIL_VERIFICATION and not verified:
        user.is_active = False  # activated by the signed link in the verification e-mail
    user.save()
    return user


def user_tokens_revoke(*, user: User) -> int:
    """Blacklist every refresh token issued to `user`; returns how many were still live."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    live = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    return len(BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live]))


def user_auth_epoch_raise(*, user: User) -> None:
    """End every session and JWT issued to `user` so far (the in-memory instance follows, so a
    caller may keep its own session with update_session_auth_hash)."""
    user.auth_epoch += 1
    User.objects.filter(pk=user.pk).update(auth_epoch=user.auth_epoch)


def user_log_out_everywhere(*, user: User) -> None:
    """Sign `user` out of every browser and API client: sessions, access and refresh tokens."""
    with transaction.atomic():
        user_auth_epoch_raise(user=user)
        user_tokens_revoke(user=user)
        audit_record(action=AuditAction.LOGOUT_EVERYWHERE, actor=user, target=user)


def user_verify_email(*, user: User) -> bool:
    """Confirm the address of an account waiting for it, activating it. An account already
    verified is left as it is: the link never re-activates one an operator deactivated.
    Returns whether anything changed."""
    if user.email_verified:
        return False
    user.email_verified = True
    user.is_active = True
    user.save(update_fields=["email_verified", "is_active"])
    return True


def normalise_networks(values: Iterable[str]) -> list[str]:
    """Validate IP addresses / CIDR ranges; return them in canonical form."""
    networks = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            networks.append(str(ipaddress.ip_network(value, strict=False)))
        except ValueError as exc:
            raise ValidationError(_("%(value)r is not an IP address or CIDR range.") % {"value": value}) from exc
    return networks


def _active_key_count(user: User, organization: Organization | None = None) -> int:
    """The user's active keys: their own, or those they created in `organization` (each counted apart)."""
    now = timezone.now()
    return (
        ApiKey.objects.filter(user=user, organization=organization, revoked_at__isnull=True)
        .exclude(expires_at__isnull=False, expires_at__lte=now)
        .count()
    )


LIMIT_OVERRIDES = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "monthly_token_budget")


def _new_key(
    *,
    user: User,
    name: str,
    expires_at,
    allowed_models,
    allowed_ips,
    rotated_from=None,
    organization: Organization | None = None,
    **overrides,
) -> tuple[ApiKey, str]:
    raw_key = keys.generate_key()
    api_key = ApiKey.objects.create(
        **overrides,
        user=user,
        organization=organization,
        name=name,
        prefix=keys.visible_prefix(raw_key),
        digest=keys.digest(raw_key),
        expires_at=expires_at,
        allowed_models=list(allowed_models),
        allowed_ips=normalise_networks(allowed_ips),
        rotated_from=rotated_from,
    )
    return api_key, raw_key


@transaction.atomic
def api_key_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: Iterable[str] = (),
    allowed_ips: Iterable[str] = (),
    monthly_token_budget: int | None = None,
    organization: Organization | None = None,
    actor: User | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key (of `organization` when given: billed to it, attributed to `user`; the caller
    checks membership, see accounts.org_services). Returns the row and the raw key, which the
    caller shows exactly once. `actor` is who asked (for the audit log; None: the system, e.g.
    `manage.py create_api_key`)."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError(_("The expiry must be in the future."))
    # Lock the user row so two concurrent creates can't both pass the limit check.
    User.objects.select_for_update().filter(pk=user.pk).first()
    if _active_key_count(user, organization) >= settings.MAX_ACTIVE_KEYS_PER_USER:
        raise ApiKeyLimitReached(
            _("You already have %(count)d active keys; revoke one first.")
            % {"count": settings.MAX_ACTIVE_KEYS_PER_USER}
        )
    api_key, raw_key = _new_key(
        user=user,
        name=name,
        expires_at=expires_at,
        allowed_models=allowed_models,
        allowed_ips=allowed_ips,
        organization=organization,
        monthly_token_budget=monthly_token_budget,
    )
    audit_record(
        action=AuditAction.API_KEY_CREATE,
        actor=actor,
        target=api_key,
        org_id=organization.pk if organization is not None else None,
        metadata={
            "prefix": api_key.prefix,
            "expires_at": api_key.expires_at,
            "allowed_models": api_key.allowed_models,
            "allowed_ips": api_key.allowed_ips,
            "monthly_token_budget": api_key.monthly_token_budget,
        },
    )
    return api_key, raw_key


def _forget_cached(api_key: ApiKey) -> None:
    cache.delete(_cache_key(api_key.digest))


@transaction.atomic
def api_key_rename(*, api_key: ApiKey, name: str, actor: User | None = None) -> ApiKey:
    old_name = api_key.name
    api_key.name = name
    api_key.save(update_fields=["name"])
    _forget_cached(api_key)
    if name != old_name:
        audit_record(
            action=AuditAction.API_KEY_RENAME, actor=actor, target=api_key, metadata={"from": old_name, "to": name}
        )
    return api_key


def _revoke(api_key: ApiKey) -> bool:
    """Revoke if not yet; True when this call revoked it."""
    revoked = api_key.revoked_at is None
    if revoked:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    _forget_cached(api_key)
    return revoked


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: User | None = None) -> ApiKey:
    if _revoke(api_key):
        audit_record(
            action=AuditAction.API_KEY_REVOKE, actor=actor, target=api_key, metadata={"prefix": api_key.prefix}
        )
    return api_key


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey, actor: User | None = None) -> tuple[ApiKey, str]:
    """Replace a key with a new secret carrying the same settings; the old one is revoked."""
    if not api_key.is_active:
        raise ValidationError(_("Only an active key can be rotated."))
    _revoke(api_key)
    new_key, raw_key = _new_key(
        user=api_key.user,
        name=api_key.name,
        expires_at=api_key.expires_at,
        allowed_models=api_key.allowed_models,
        allowed_ips=api_key.allowed_ips,
        rotated_from=api_key,
        organization=api_key.organization,
        **{field: getattr(api_key, field) for field in LIMIT_OVERRIDES},
    )
    audit_record(
        action=AuditAction.API_KEY_ROTATE,
        actor=actor,
        target=new_key,
        metadata={"old_key_id": api_key.pk, "old_prefix": api_key.prefix, "prefix": new_key.prefix},
    )
    return new_key, raw_key


def _cache_key(key_digest: str) -> str:
    return f"apikey:{key_digest}"


# What the cached entry of a key holds: the fields authentication, limits and metering read, and
# nothing else (no password hash, no pickled model instances).
_KEY_FIELDS = (
    "id",
    "user_id",
    "organization_id",
    "name",
    "prefix",
    "created_at",
    "expires_at",
    "revoked_at",
    "allowed_models",
    "allowed_ips",
    *LIMIT_OVERRIDES,
)
_USER_FIELDS = ("id", "username", "email", "is_active", "plan_id")
_PLAN_FIELDS = (
    "id",
    "name",
    "requests_per_minute",
    "tokens_per_minute",
    "tokens_per_day",
    "max_tokens_per_request",
    "max_prompt_tokens_per_request",
    "max_concurrent_requests",
    "allowed_models",
    "monthly_token_budget",
    "is_default",
)
_ORGANIZATION_FIELDS = ("id", "name", "plan_id", "monthly_token_budget")


def _entry_of(api_key: ApiKey) -> dict:
    """The cacheable form of a key: plain values. The plan is the one that governs the key: its
    organization's for an organization's key, else its owner's."""
    from accounts.selectors import plan_for_organization, plan_for_user

    organization = api_key.organization
    plan = plan_for_organization(organization=organization) if organization else plan_for_user(user=api_key.user)
    return {
        "key": {name: getattr(api_key, name) for name in _KEY_FIELDS},
        "user": {name: getattr(api_key.user, name) for name in _USER_FIELDS},
        "plan": {name: getattr(plan, name) for name in _PLAN_FIELDS},
        "organization": {name: getattr(organization, name) for name in _ORGANIZATION_FIELDS} if organization else None,
    }


def _key_from_entry(entry: dict) -> ApiKey:
    """Unsaved-looking instances rebuilt from a cache entry: enough for auth, never to be saved."""
    plan = Plan(**entry["plan"])
    user = User(**entry["user"], password="!")  # an unusable password: this instance is not the row
    user.plan = plan  # the plan that governs this key's requests (the default plan when there is none)
    api_key = ApiKey(**entry["key"])
    api_key.user = user
    if entry["organization"] is not None:
        organization = Organization(**entry["organization"])
        organization.plan = plan
        api_key.organization = organization
    return api_key


def _load_key(key_digest: str) -> ApiKey | None:
    """The key row with its user and plan from the database, then kept in the cache (as plain
    values: see _entry_of)."""
    api_key = (
        ApiKey.objects.select_related("user", "user__plan", "organization", "organization__plan")
        .filter(digest=key_digest)
        .first()
    )
    if api_key is None:
        return None
    entry = _entry_of(api_key)
    if settings.API_KEY_CACHE_SECONDS:
        cache.set(_cache_key(key_digest), entry, settings.API_KEY_CACHE_SECONDS)
    return _key_from_entry(entry)


# digest -> (cache entry, the instances rebuilt from it). The shared cache is still read on every
# request (a revoked or changed key must take effect in every worker at once); only rebuilding the
# same model instances from the same entry is skipped. The instances are read-only by contract.
_REBUILT: dict[str, tuple[dict, ApiKey]] = {}
_REBUILT_MAX = 4096


def _cached_key(key_digest: str) -> ApiKey | None:
    entry = cache.get(_cache_key(key_digest))
    if not isinstance(entry, dict):
        return None
    known = _REBUILT.get(key_digest)
    if known is not None and known[0] == entry:
        return known[1]
    try:
        api_key = _key_from_entry(entry)
    except (KeyError, TypeError):  # an entry written by another version: reload it
        return None
    if len(_REBUILT) >= _REBUILT_MAX:
        _REBUILT.clear()
    _REBUILT[key_digest] = (entry, api_key)
    return api_key


def api_key_cache_forget(*, digests: Iterable[str]) -> None:
    """Drop cached key entries, so the next request reads the database."""
    cache_keys = [_cache_key(digest) for digest in digests]
    if cache_keys:
        cache.delete_many(cache_keys)


def api_key_cache_forget_for_users(*, user_ids: Iterable[int]) -> None:
    """Drop the cached entries of every key of these users (deactivation, plan change, ...)."""
    ids = list(user_ids)
    if ids:
        api_key_cache_forget(digests=ApiKey.objects.filter(user_id__in=ids).values_list("digest", flat=True))


def api_key_cache_forget_for_plan(*, plan: Plan) -> None:
    """Drop the cached entries of keys governed by `plan` (its users; all plan-less users if it
    is, or was, the default)."""
    keys_qs = ApiKey.objects.filter(user__plan=plan)
    api_key_cache_forget(digests=keys_qs.values_list("digest", flat=True))
    api_key_cache_forget(digests=ApiKey.objects.filter(user__plan__isnull=True).values_list("digest", flat=True))
    org_keys = ApiKey.objects.filter(organization__isnull=False)
    api_key_cache_forget(
        digests=org_keys.filter(Q(organization__plan=plan) | Q(organization__plan__isnull=True)).values_list(
            "digest", flat=True
        )
    )


def api_key_cache_forget_for_organization(*, organization: Organization) -> None:
    """Drop the cached entries of the organization's keys (its plan or budget changed)."""
    api_key_cache_forget(digests=ApiKey.objects.filter(organization=organization).values_list("digest", flat=True))


def _digest_of_well_formed(raw_key: str) -> str:
    if not keys.is_well_formed(raw_key):
        raise MalformedApiKey("Incorrect API key provided: the key is malformed.")
    return keys.digest(raw_key)


def _verify(api_key: ApiKey | None, client_ip: str, now) -> ApiKey:
    if api_key is None:
        raise UnknownApiKey("Incorrect API key provided.")
    if api_key.is_revoked:
        raise RevokedApiKey("This API key has been revoked.")
    if api_key.is_expired(now):
        raise ExpiredApiKey("This API key has expired.")
    if not api_key.user.is_active:
        raise InactiveAccount("The account that owns this API key is inactive.")
    if not api_key.allows_ip(client_ip):
        raise IpNotAllowed(f"Requests from {client_ip} are not allowed for this API key.")
    return api_key


def _last_used_is_due(api_key: ApiKey) -> bool:
    """True at most once per API_KEY_LAST_USED_INTERVAL_SECONDS per key (a cache add, no query)."""
    return cache.add(f"apikey-used:{api_key.pk}", 1, settings.API_KEY_LAST_USED_INTERVAL_SECONDS)


def _touch(api_key_id: int, now) -> None:
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=now)


def api_key_authenticate(*, raw_key: str, client_ip: str) -> ApiKey:
    """Resolve a presented key or raise the precise ApiKeyRejected subclass.

    Malformed keys are rejected before any lookup; a cached key costs no query; last_used_at is
    written at most once per API_KEY_LAST_USED_INTERVAL_SECONDS per key, not on every request.
    """
    key_digest = _digest_of_well_formed(raw_key)
    now = timezone.now()
    api_key = _verify(_cached_key(key_digest) or _load_key(key_digest), client_ip, now)
    if _last_used_is_due(api_key):
        _touch(api_key.pk, now)
    return api_key


async def aapi_key_authenticate(*, raw_key: str, client_ip: str) -> ApiKey:
    """api_key_authenticate for async views: the cached path stays on the event loop; only the
    database work (a cache miss, the once-a-minute last-used write) goes to a thread."""
    key_digest = _digest_of_well_formed(raw_key)
    now = timezone.now()
    api_key = _cached_key(key_digest)
    if api_key is None:
        api_key = await db_sync_to_async(_load_key)(key_digest)
    api_key = _verify(api_key, client_ip, now)
    if _last_used_is_due(api_key):
        await db_sync_to_async(_touch)(api_key.pk, now)
    return api_key
