"""Monthly token budgets (calendar months, UTC) and their alerts at 80 % and 100 %.

Three budgets can govern a request:

- the plan's `monthly_token_budget`, per user for personal keys and the playground, per
  organization for an organization's keys (subject `user:<id>` or `org:<id>`);
- the organization's own `monthly_token_budget` (same subject `org:<id>`: the lower of the two holds);
- the key's own `monthly_token_budget` (subject `key:<id>`).

Admission (usage.metering) reads the month-to-date totals of the caller's budgeted subjects with
one cache read; a total missing from the cache is seeded from the usage rows (one aggregate query,
then cached for TOTAL_CACHE_SECONDS). Totals grow when usage rows are written: the recorder and the
batch runner call `budget_usage_add` once the rows are committed. Crossing 80 % or 100 % of a
budget sends one alert per subject, month and threshold (a BudgetAlert row under a unique
constraint, so two workers never both send it): an e-mail, and a signed webhook when one is set.

Tokens of cached answers do not count, as for the per-minute and per-day windows.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from accounts.caller import Caller
    from usage.recorder import UsageEvent

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
TOTAL_CACHE_SECONDS = 300  # a cached total is re-read from the usage rows at least this often
WEBHOOK_TIMEOUT_SECONDS = 5
SIGNATURE_HEADER = "X-LLMOS-Signature"


@dataclass(frozen=True)
class Budget:
    subject: str  # "user:<id>", "org:<id>" or "key:<id>"
    tokens: int


def period_of(moment: datetime) -> str:
    """The calendar month (UTC) of `moment`: "2026-11"."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[first instant of the month, first instant of the next month), UTC."""
    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if month == 12 else datetime(year, month + 1, 1, tzinfo=UTC)
    return start, end


def seconds_to_next_month(now: datetime | None = None) -> int:
    now = now or timezone.now()
    _, end = month_bounds(period_of(now))
    return max(1, int((end - now).total_seconds()))


def billed_subject(*, user_id: int, organization_id: int | None) -> str:
    """Who a request is billed to: the organization of its key, else the user."""
    return f"org:{organization_id}" if organization_id is not None else f"user:{user_id}"


def budgets_for(caller: Caller) -> list[Budget]:
    """The monthly budgets that govern the caller's requests (none set: an empty list, no reads)."""
    organization = caller.organization
    billed = [caller.plan.monthly_token_budget]
    if organization is not None:
        billed.append(organization.monthly_token_budget)
    found = [value for value in billed if value is not None]
    budgets = []
    if found:
        budgets.append(
            Budget(billed_subject(user_id=caller.user.pk, organization_id=caller.organization_id), min(found))
        )
    api_key = caller.api_key
    if api_key is not None and api_key.monthly_token_budget is not None:
        budgets.append(Budget(f"key:{api_key.pk}", api_key.monthly_token_budget))
    return budgets


def _cache_key(subject: str, period: str) -> str:
    return f"budget:{subject}:{period}"


def _rows_of(subject: str):
    from usage.models import UsageRecord

    kind, _sep, ident = subject.partition(":")
    rows = UsageRecord.objects.filter(cached=False)
    if kind == "org":
        return rows.filter(organization_id=int(ident))
    if kind == "key":
        return rows.filter(api_key_id=int(ident))
    return rows.filter(user_id=int(ident), organization__isnull=True)


def month_total_from_rows(subject: str, period: str) -> int:
    start, end = month_bounds(period)
    total = (
        _rows_of(subject)
        .filter(created_at__gte=start, created_at__lt=end)
        .aggregate(total=Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0))["total"]
    )
    return int(total)


def _seed(subjects: Iterable[str], period: str) -> dict[str, int]:
    totals = {}
    for subject in subjects:
        total = month_total_from_rows(subject, period)
        cache_key = _cache_key(subject, period)
        if not cache.add(cache_key, total, TOTAL_CACHE_SECONDS):  # another worker was first: keep its value
            total = cache.get(cache_key, total)
        totals[subject] = int(total)
    return totals


def month_totals(subjects: list[str], period: str | None = None) -> dict[str, int]:
    """Month-to-date tokens of each subject: from the cache, seeded from the usage rows if missing."""
    period = period or period_of(timezone.now())
    found = cache.get_many([_cache_key(subject, period) for subject in subjects])
    totals = {
        subject: int(found[_cache_key(subject, period)]) for subject in subjects if _cache_key(subject, period) in found
    }
    missing = [subject for subject in subjects if subject not in totals]
    return {**totals, **_seed(missing, period)} if missing else totals


async def amonth_totals(subjects: list[str]) -> dict[str, int]:
    """month_totals for the event loop: the cache read stays here, a seed goes to a thread."""
    period = period_of(timezone.now())
    found = cache.get_many([_cache_key(subject, period) for subject in subjects])
    totals = {
        subject: int(found[_cache_key(subject, period)]) for subject in subjects if _cache_key(subject, period) in found
    }
    missing = [subject for subject in subjects if subject not in totals]
    if missing:
        totals.update(await sync_to_async(_seed)(missing, period))
    return totals


def exhausted(budgets: list[Budget], totals: dict[str, int]) -> Budget | None:
    """The first budget already spent, or None."""
    return next((budget for budget in budgets if totals.get(budget.subject, 0) >= budget.tokens), None)


def remaining(budgets: list[Budget], totals: dict[str, int]) -> int | None:
    """Tokens left under the tightest budget (None: no budget)."""
    if not budgets:
        return None
    return min(budget.tokens - totals.get(budget.subject, 0) for budget in budgets)


# --- counting written rows, alerts --------------------------------------------------------------


def budget_usage_add(*, events: Iterable[UsageEvent]) -> None:
    """Add committed usage rows to the cached month-to-date totals, then send the alerts now due.
    Never raises: metering must not stop over an alert."""
    try:
        added: dict[tuple[str, str], int] = defaultdict(int)
        for event in events:
            tokens = event.prompt_tokens + event.completion_tokens
            if event.cached or tokens <= 0:
                continue
            period = period_of(event.created_at)
            added[(billed_subject(user_id=event.user_id, organization_id=event.organization_id), period)] += tokens
            if event.api_key_id is not None:
                added[(f"key:{event.api_key_id}", period)] += tokens
        for (subject, period), tokens in added.items():
            try:
                cache.incr(_cache_key(subject, period), tokens)
            except ValueError:
                pass  # not cached: the next read seeds it from the rows, which include these
        if added:
            _alerts_check(sorted(added))
    except Exception:
        logger.exception("counting usage against monthly budgets failed")


def budget_of(subject: str) -> int | None:
    """The monthly budget of a subject as the database says now (None: no budget)."""
    from accounts.models import ApiKey, Organization, User
    from accounts.selectors import plan_for_organization, plan_for_user

    kind, _sep, ident = subject.partition(":")
    if kind == "key":
        return ApiKey.objects.filter(pk=int(ident)).values_list("monthly_token_budget", flat=True).first()
    if kind == "org":
        organization = Organization.objects.select_related("plan").filter(pk=int(ident)).first()
        if organization is None:
            return None
        found = [plan_for_organization(organization=organization).monthly_token_budget]
        found.append(organization.monthly_token_budget)
        values = [value for value in found if value is not None]
        return min(values) if values else None
    user = User.objects.select_related("plan").filter(pk=int(ident)).first()
    return None if user is None else plan_for_user(user=user).monthly_token_budget


def _alerts_check(touched: list[tuple[str, str]]) -> None:
    from usage.models import BudgetAlert

    for subject, period in touched:
        if cache.get(f"budget-alerted:{subject}:{period}") == THRESHOLDS[-1]:
            continue  # every alert of this month was sent
        budget = budget_of(subject)
        if not budget:
            continue
        total = month_totals([subject], period)[subject]
        newly_reached = []
        for threshold in THRESHOLDS:
            if total * 100 < budget * threshold:
                break
            try:
                with transaction.atomic():
                    _alert, created = BudgetAlert.objects.get_or_create(
                        scope=subject, period=period, threshold=threshold, defaults={"tokens": total, "budget": budget}
                    )
            except IntegrityError:  # another worker created it between our read and write
                created = False
            if created:
                newly_reached.append(threshold)
            if threshold == THRESHOLDS[-1]:
                cache.set(f"budget-alerted:{subject}:{period}", threshold, TOTAL_CACHE_SECONDS)
        if newly_reached:  # 80 % and 100 % crossed at once: one message, about 100 %
            alert_send(subject=subject, period=period, threshold=newly_reached[-1], tokens=total, budget=budget)


@dataclass(frozen=True)
class Recipients:
    emails: list[str]
    webhook_url: str
    webhook_secret: str
    description: str


def _recipients(subject: str) -> Recipients | None:
    from accounts.models import ApiKey, Membership, Organization, User

    kind, _sep, ident = subject.partition(":")

    def managers(organization: Organization) -> list[str]:
        return list(
            Membership.objects.filter(
                organization=organization, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN]
            ).values_list("user__email", flat=True)
        )

    if kind == "user":
        user = User.objects.filter(pk=int(ident)).first()
        if user is None:
            return None
        return Recipients([user.email], user.alert_webhook_url, user.alert_webhook_secret, _("your account"))
    if kind == "org":
        organization = Organization.objects.filter(pk=int(ident)).first()
        if organization is None:
            return None
        return Recipients(
            managers(organization),
            organization.alert_webhook_url,
            organization.alert_webhook_secret,
            _("the organization “%(name)s”") % {"name": organization.name},
        )
    api_key = ApiKey.objects.select_related("user", "organization").filter(pk=int(ident)).first()
    if api_key is None:
        return None
    description = _("the API key “%(name)s” (%(prefix)s…)") % {"name": api_key.name, "prefix": api_key.prefix}
    if api_key.organization is not None:
        emails = sorted({api_key.user.email, *managers(api_key.organization)})
        org = api_key.organization
        return Recipients(emails, org.alert_webhook_url, org.alert_webhook_secret, description)
    user = api_key.user
    return Recipients([user.email], user.alert_webhook_url, user.alert_webhook_secret, description)


def webhook_signature(secret: str, body: bytes) -> str:
    """The value of the X-LLMOS-Signature header: `sha256=` + HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is an error: it could point anywhere, the internal network included


def webhook_target_allowed(url: str) -> bool:
    """False for a host that resolves to a loopback, private, link-local or reserved address (no
    requests into the server's own network), unless ALERT_WEBHOOK_ALLOW_PRIVATE (default: DEBUG)."""
    if getattr(settings, "ALERT_WEBHOOK_ALLOW_PRIVATE", settings.DEBUG):
        return True
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses)


def webhook_send(*, url: str, secret: str, payload: dict) -> int | None:
    """POST the payload as JSON, signed; the response status, or None when it could not be sent.
    Redirects are not followed."""
    if not webhook_target_allowed(url):
        logger.warning("budget alert webhook %s refused: its host is not a public address", url)
        return None
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: webhook_signature(secret, body)},
    )
    try:
        opener = urllib.request.build_opener(_NoRedirects)
        with opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # http(s): a URLField
            return int(response.status)
    except Exception as exc:
        logger.warning("budget alert webhook %s failed: %s", url, exc)
        return None


def _deliver(recipients: Recipients, payload: dict, subject_line: str, body: str) -> None:
    if recipients.emails:
        try:
            send_mail(subject_line, body, None, recipients.emails)
        except Exception:
            logger.exception("sending a budget alert e-mail failed")
    if recipients.webhook_url:
        webhook_send(url=recipients.webhook_url, secret=recipients.webhook_secret, payload=payload)


def alert_send(*, subject: str, period: str, threshold: int, tokens: int, budget: int) -> None:
    """E-mail the people responsible for the budget and call its webhook, off the caller's thread
    (on it when USAGE_BACKGROUND_WRITES is off, as in the tests)."""
    recipients = _recipients(subject)
    if recipients is None:
        return
    kind, _sep, ident = subject.partition(":")
    payload = {
        "type": "budget.threshold_reached",
        "scope": kind,
        "scope_id": int(ident),
        "period": period,
        "threshold_percent": threshold,
        "tokens": tokens,
        "budget": budget,
        "sent_at": int(timezone.now().timestamp()),
    }
    values = {"what": recipients.description, "threshold": threshold, "period": period}
    subject_line = _("Budget alert: %(what)s used %(threshold)s%% of its monthly tokens") % values
    body = _(
        "%(what)s has used %(tokens)s of its %(budget)s tokens for %(period)s (UTC), %(threshold)s%% of the budget."
    ) % {**values, "tokens": tokens, "budget": budget}
    if threshold >= 100:
        body += "\n\n" + _("Requests are refused (429 insufficient_quota) until the budget renews next month.")
    last_day = calendar.monthrange(*(int(part) for part in period.split("-")))[1]
    body += "\n\n" + _("The budget renews on the 1st, after %(period)s-%(day)s.") % {"period": period, "day": last_day}
    if settings.USAGE_BACKGROUND_WRITES:
        threading.Thread(
            target=_deliver, args=(recipients, payload, subject_line, body), name="budget-alert", daemon=True
        ).start()
    else:
        _deliver(recipients, payload, subject_line, body)


def budget_status(subject: str) -> dict | None:
    """This month's budget of a subject for the dashboards: budget, tokens used, percent, period;
    None when it has no budget."""
    budget = budget_of(subject)
    if not budget:
        return None
    period = period_of(timezone.now())
    tokens = month_totals([subject], period)[subject]
    return {"budget": budget, "tokens": tokens, "percent": min(100, tokens * 100 // budget), "period": period}
