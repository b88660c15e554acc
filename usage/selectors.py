"""Reads of usage. Every per-user query is scoped to its owner; the overview is for staff only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from usage.models import UsageRecord

MAX_LATENCY_SAMPLE = 50_000  # percentiles are computed over at most this many recent rows
# Dates outside these bounds hold no usage, and date arithmetic near date.min/max overflows.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(9000, 12, 31)


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int, today: date | None = None) -> DateRange:
        today = today or timezone.now().date()
        return cls(today - timedelta(days=days - 1), today)

    @classmethod
    def from_bounds(cls, start: date | None, end: date | None, *, max_days: int = 366) -> DateRange:
        """Fill in the defaults (the 30 days up to today) and check the range; ValueError if bad."""
        for bound in (start, end):
            if bound is not None and not EARLIEST_DAY <= bound <= LATEST_DAY:
                raise ValueError(
                    _("Dates must lie between %(earliest)s and %(latest)s.")
                    % {"earliest": EARLIEST_DAY, "latest": LATEST_DAY}
                )
        end = end or timezone.now().date()
        start = start or end - timedelta(days=29)
        if start > end:
            raise ValueError(_("The start date must not be after the end date."))
        if (end - start).days >= max_days:
            raise ValueError(_("Choose a range of at most %(days)d days.") % {"days": max_days})
        return cls(start, end)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=offset) for offset in range((self.end - self.start).days + 1)]


def scope_rows(*, user, membership=None) -> QuerySet[UsageRecord]:
    """The usage rows a person may see in a scope: their personal usage (requests billed to them,
    not on an organization's keys), or, with their `membership` of an organization, its usage:
    all of it for owners and admins, the requests attributed to them for members."""
    if membership is None:
        return UsageRecord.objects.filter(user=user, organization__isnull=True)
    rows = UsageRecord.objects.filter(organization_id=membership.organization_id)
    return rows if membership.manages else rows.filter(user=user)


def usage_for_user(
    *,
    user,
    period: DateRange,
    model: str = "",
    api_key_id: int | None = None,
    status: str = "",
    membership=None,
    end_user: str = "",
) -> QuerySet[UsageRecord]:
    """The usage rows in the period of the scope (see scope_rows), newest first, optionally filtered."""
    rows = scope_rows(user=user, membership=membership).filter(
        created_at__gte=period.start_at, created_at__lt=period.end_before
    )
    if model:
        rows = rows.filter(model=model)
    if end_user:
        rows = rows.filter(end_user=end_user)
    if api_key_id is not None:
        rows = rows.filter(api_key_id=api_key_id)
    if status == "ok":
        rows = rows.filter(status_code__lt=400)
    elif status == "error":
        rows = rows.filter(status_code__gte=400)
    return rows.select_related("api_key").order_by("-created_at", "-id")


_TOTALS = {
    "requests": Count("id"),
    "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
    "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
    "errors": Count("id", filter=Q(status_code__gte=400)),
    "cached": Count("id", filter=Q(cached=True)),
}


def _with_total(row: dict) -> dict:
    row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    return row


def usage_daily(rows: QuerySet[UsageRecord], period: DateRange) -> list[dict]:
    """One entry per day of the period (days without requests included, as zeros)."""
    by_day = {
        row["day"]: row
        for row in rows.order_by().annotate(day=TruncDate("created_at")).values("day").annotate(**_TOTALS)
    }
    empty = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "errors": 0, "cached": 0}
    return [_with_total({**empty, **by_day.get(day, {}), "day": day}) for day in period.days()]


def usage_by(rows: QuerySet[UsageRecord], field: str) -> list[dict]:
    """Totals grouped by `model`, `api_key`, `endpoint` or `user__email` (the member), biggest first."""
    grouped = rows.order_by().values(field).annotate(**_TOTALS).order_by("-requests")
    results = [_with_total(dict(row)) for row in grouped]
    if field == "api_key":
        from accounts.models import ApiKey

        names = dict(ApiKey.objects.filter(pk__in=[row["api_key"] for row in results]).values_list("pk", "name"))
        for row in results:
            row["api_key_name"] = names.get(row["api_key"], "(no key: playground)")
    return sorted(results, key=lambda row: (-row["total_tokens"], -row["requests"]))


def usage_totals(rows: QuerySet[UsageRecord]) -> dict:
    return _with_total(rows.order_by().aggregate(**_TOTALS))


def usage_spend(by_model: list[dict]) -> tuple[list[dict], Decimal | None]:
    """Spend per model (rows of usage_by(..., "model")) at the prices operators set
    (usage.ModelPrice), and the total; (empty list, None) when no model used has a price."""
    from usage.models import ModelPrice

    prices = {price.model: price for price in ModelPrice.objects.filter(model__in=[row["model"] for row in by_model])}
    spend = []
    for row in by_model:
        price = prices.get(row["model"])
        if price is None:
            continue
        cost = (row["prompt_tokens"] * price.input_per_1k + row["completion_tokens"] * price.output_per_1k) / 1000
        spend.append(
            {
                "model": row["model"],
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
                "spend": cost.quantize(Decimal("0.0001")),
            }
        )
    total = sum((row["spend"] for row in spend), Decimal(0)) if spend else None
    return spend, total


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def latency_percentiles(rows: QuerySet[UsageRecord]) -> dict:
    """p50/p95 of end-to-end latency and time to first token (ms), over successful requests."""
    ok = rows.filter(status_code__lt=400)[:MAX_LATENCY_SAMPLE]
    latencies = sorted(value for value in ok.values_list("latency_ms", flat=True))
    ttfts = sorted(value for value in ok.values_list("ttft_ms", flat=True) if value is not None)
    return {
        "latency_p50_ms": percentile(latencies, 0.50),
        "latency_p95_ms": percentile(latencies, 0.95),
        "ttft_p50_ms": percentile(ttfts, 0.50),
        "ttft_p95_ms": percentile(ttfts, 0.95),
    }


def usage_overview(*, period: DateRange, limit: int = 10) -> dict:
    """For operators: top users, models and error rates across everyone."""
    rows = UsageRecord.objects.filter(created_at__gte=period.start_at, created_at__lt=period.end_before)
    top_users = [
        _with_total(dict(row))
        for row in rows.order_by().values("user__email").annotate(**_TOTALS).order_by("-requests")[: limit * 5]  # type: ignore[misc]  # annotated by **_TOTALS
    ]
    top_users = sorted(top_users, key=lambda row: -row["total_tokens"])[:limit]
    models = usage_by(rows, "model")
    for row in [*models, *top_users]:
        row["error_rate"] = row["errors"] / row["requests"] if row["requests"] else 0.0
    return {
        "totals": usage_totals(rows),
        "top_users": top_users,
        "models": models,
        "endpoints": usage_by(rows, "endpoint"),
        "latency": latency_percentiles(rows),
    }
