"""Writing the audit log. Every record goes through audit_record."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.context import current_request
from audit.models import AuditAction, AuditEvent

MAX_STRING = 500
REDACTED = "[redacted]"
# Keys whose values are never stored, wherever they appear in the details ("tokens_per_day" is
# a limit, not a secret: whole words are matched).
_SECRET_WORDS = frozenset(
    {"password", "password1", "password2", "passwd", "secret", "token", "digest", "otp", "authorization", "cookie"}
)


_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")  # http://user:password@host


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return (
        "api_key" in lowered
        or "apikey" in lowered
        or any(word in _SECRET_WORDS for word in re.split(r"[^a-z0-9]+", lowered))
    )


@dataclass(frozen=True)
class AuditTarget:
    """A target that is not (or no longer) a model instance: e.g. the account name a failed
    sign-in tried."""

    type: str
    id: str = ""
    repr: str = ""


def _looks_like_api_key(value: str) -> bool:
    from accounts import keys

    return value.startswith(keys.key_prefix()) and keys.is_well_formed(value.strip())


def scrub(value: Any, *, depth: int = 0) -> Any:
    """Details safe to keep: values under secret-looking keys and strings that are API keys are
    replaced, long strings cut, nesting bounded."""
    if depth > 5:
        return REDACTED
    if isinstance(value, dict):
        return {
            str(key)[:100]: REDACTED if _is_secret_key(str(key)) else scrub(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item, depth=depth + 1) for item in list(value)[:100]]
    if isinstance(value, str):
        if _looks_like_api_key(value):
            return REDACTED
        return _URL_USERINFO.sub(rf"\1{REDACTED}@", value)[:MAX_STRING]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:MAX_STRING]


def _ip_of(request) -> str | None:
    from accounts.authentication import client_ip

    address = client_ip(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _target_fields(target: models.Model | AuditTarget | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, AuditTarget):
        return target.type, target.id, target.repr
    opts = target._meta
    return f"{opts.app_label}.{opts.model_name}", str(target.pk or ""), str(target)


def _subject_of(target: models.Model | AuditTarget | None):
    """The account an event about `target` concerns: the user itself, or the owner of a key."""
    from accounts.models import User

    if isinstance(target, User):
        return target
    user = getattr(target, "user", None) if isinstance(target, models.Model) else None
    return user if isinstance(user, User) else None


def audit_record(
    *,
    action: AuditAction | str,
    actor,
    target: models.Model | AuditTarget | None = None,
    subject=None,
    request=None,
    org_id: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. `actor` is the user who acted (None: the system, or an anonymous
    caller); `subject` defaults to the account `target` belongs to. The client address (behind
    TRUSTED_PROXIES) and request id come from `request`, or from the request being served."""
    action = AuditAction(action)
    request = request if request is not None else current_request()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None  # AnonymousUser
    target_type, target_id, target_repr = _target_fields(target)
    event = AuditEvent(
        action=action,
        actor=actor,
        actor_repr=(actor.get_username() if actor is not None else "")[:254],
        subject=subject if subject is not None else _subject_of(target),
        target_type=target_type[:100],
        target_id=target_id[:64],
        target_repr=target_repr[:200],
        org_id=org_id,
        ip=_ip_of(request) if request is not None else None,
        request_id=str(getattr(request, "request_id", "") or "")[:128] if request is not None else "",
        metadata=scrub(metadata or {}),
    )
    event.save()
    return event


def audit_login_success(*, user, request, method: str = "password") -> AuditEvent:
    """A completed sign-in: a session (`method` password, two_factor, signup) or a JWT (jwt)."""
    return audit_record(action=AuditAction.LOGIN, actor=user, target=user, request=request, metadata={"method": method})


def audit_login_failure(*, username: str, request, reason: str, user=None) -> AuditEvent:
    """A refused sign-in: the account name tried (never the password), from the request's
    address. When the name is an account's, that account's owner sees the attempt."""
    from accounts.models import User

    username = username.strip()[:150]
    if user is None and username:
        user = User.objects.filter(username__iexact=username).first()
    target: models.Model | AuditTarget = user if user is not None else AuditTarget("accounts.user", "", username)
    path = str(getattr(request, "path", "") or "")
    return audit_record(
        action=AuditAction.LOGIN_FAILED,
        actor=None,
        target=target,
        request=request,
        metadata={"username": username, "reason": reason, "via": "api" if path.startswith("/api/") else "web"},
    )
