"""Usage pages: a user's dashboard and CSV export, and the operators' overview."""

from __future__ import annotations

import csv

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.selectors import api_keys_for_user
from accounts.typing import AuthenticatedRequest
from usage import selectors
from usage.forms import UsageFilterForm
from usage.models import UsageRecord
from usage.selectors import DateRange

CSV_COLUMNS = [
    "created_at",
    "request_id",
    "endpoint",
    "model",
    "api_key",
    "status_code",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "cached",
    "streamed",
    "client_disconnected",
]


def _filter_form(request: AuthenticatedRequest) -> UsageFilterForm:
    """Bound to the query string, with the default range (last 30 days) filled in so it shows."""
    data = request.GET.copy()
    default = DateRange.last_days(30)
    if not data.get("end"):
        data["end"] = default.end.isoformat()
    if not data.get("start"):
        data["start"] = default.start.isoformat()
    models = sorted(set(UsageRecord.objects.filter(user=request.user).values_list("model", flat=True).distinct()))
    keys = [(key.pk, f"{key.name} ({key.prefix}…)") for key in api_keys_for_user(user=request.user)]
    return UsageFilterForm(data, models=models, keys=keys)


def _filtered_rows(request: AuthenticatedRequest, form: UsageFilterForm):
    data = form.cleaned_data
    return selectors.usage_for_user(
        user=request.user,
        period=data["period"],
        model=data.get("model") or "",
        api_key_id=data.get("key"),
        status=data.get("status") or "",
    )


@login_required
def usage_page(request: AuthenticatedRequest) -> HttpResponseBase:
    form = _filter_form(request)
    if not form.is_valid():
        return render(request, "usage/usage.html", {"form": form}, status=400)
    period = form.cleaned_data["period"]
    everything = selectors.usage_for_user(user=request.user, period=period)
    daily = selectors.usage_daily(everything, period)
    chart_data = {
        "days": [row["day"].isoformat() for row in daily],
        "requests": [row["requests"] for row in daily],
        "errors": [row["errors"] for row in daily],
        "prompt_tokens": [row["prompt_tokens"] for row in daily],
        "completion_tokens": [row["completion_tokens"] for row in daily],
    }
    recent = Paginator(_filtered_rows(request, form), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "period": period,
        "totals": selectors.usage_totals(everything),
        "latency": selectors.latency_percentiles(everything),
        "daily": daily,
        "chart_data": chart_data,
        "by_model": selectors.usage_by(everything, "model"),
        "by_key": selectors.usage_by(everything, "api_key"),
        "by_endpoint": selectors.usage_by(everything, "endpoint"),
        "recent": recent,
        "query": query.urlencode(),
    }
    return render(request, "usage/usage.html", context)


class _Echo:
    """A file-like object whose write returns the line, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


@login_required
def usage_export(request: AuthenticatedRequest) -> HttpResponseBase:
    form = _filter_form(request)
    if not form.is_valid():
        return HttpResponse(_("Invalid date range or filter."), status=400, content_type="text/plain")
    period = form.cleaned_data["period"]
    rows = _filtered_rows(request, form).iterator(chunk_size=2000)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(CSV_COLUMNS)
        for row in rows:
            yield writer.writerow(
                [
                    row.created_at.isoformat(),
                    row.request_id,
                    row.endpoint,
                    row.model,
                    row.api_key.prefix if row.api_key else "",
                    row.status_code,
                    row.error_code,
                    row.prompt_tokens,
                    row.completion_tokens,
                    row.total_tokens,
                    row.latency_ms,
                    "" if row.ttft_ms is None else row.ttft_ms,
                    row.cached,
                    row.streamed,
                    row.client_disconnected,
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{period.start}-{period.end}.csv"'
    return response


@staff_member_required
def operator_overview(request: AuthenticatedRequest) -> HttpResponseBase:
    form = UsageFilterForm(request.GET or {}, models=[], keys=[])
    if not form.is_valid():
        return render(request, "usage/overview.html", {"form": form}, status=400)
    period = form.cleaned_data["period"]
    return render(
        request, "usage/overview.html", {"form": form, "period": period, **selectors.usage_overview(period=period)}
    )
