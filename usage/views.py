"""Usage pages: a user's dashboard and CSV export, and the operators' overview."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import org_selectors, org_services
from accounts.models import Membership
from accounts.org_forms import AlertSettingsForm
from accounts.selectors import api_keys_for_user
from accounts.typing import AuthenticatedRequest
from usage import budgets, selectors
from usage.forms import UsageFilterForm
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


def _scope(request: AuthenticatedRequest) -> Membership | None:
    """The organization scope (`?org=<id>`): the caller's membership, 404 for anyone else."""
    org_id = request.GET.get("org") or ""
    if not org_id:
        return None
    try:
        return org_selectors.membership_for(user=request.user, organization_id=int(org_id))
    except (ValueError, Membership.DoesNotExist) as exc:
        raise Http404(_("No such organization.")) from exc


def _filter_form(request: AuthenticatedRequest, membership: Membership | None) -> UsageFilterForm:
    """Bound to the query string, with the default range (last 30 days) filled in so it shows."""
    data = request.GET.copy()
    default = DateRange.last_days(30)
    if not data.get("end"):
        data["end"] = default.end.isoformat()
    if not data.get("start"):
        data["start"] = default.start.isoformat()
    rows = selectors.scope_rows(user=request.user, membership=membership)
    models = sorted(set(rows.values_list("model", flat=True).distinct()))
    if membership is None:
        key_rows = api_keys_for_user(user=request.user)
    else:
        key_rows = org_selectors.org_keys_visible(membership=membership)
    keys = [(key.pk, f"{key.name} ({key.prefix}…)") for key in key_rows]
    scopes = [(m.organization_id, m.organization.name) for m in org_selectors.memberships_for_user(user=request.user)]
    return UsageFilterForm(data, models=models, keys=keys, scopes=scopes)


def _filtered_rows(request: AuthenticatedRequest, form: UsageFilterForm, membership: Membership | None):
    data = form.cleaned_data
    return selectors.usage_for_user(
        user=request.user,
        period=data["period"],
        model=data.get("model") or "",
        api_key_id=data.get("key"),
        status=data.get("status") or "",
        membership=membership,
    )


def _budget(request: AuthenticatedRequest, membership: Membership | None) -> dict | None:
    """This month's budget of the scope: yours, or the organization's (owners and admins see it)."""
    if membership is None:
        return budgets.budget_status(f"user:{request.user.pk}")
    return budgets.budget_status(f"org:{membership.organization_id}") if membership.manages else None


@login_required
def usage_page(request: AuthenticatedRequest) -> HttpResponseBase:
    membership = _scope(request)
    form = _filter_form(request, membership)
    if not form.is_valid():
        return render(request, "usage/usage.html", {"form": form}, status=400)
    period = form.cleaned_data["period"]
    everything = selectors.usage_for_user(user=request.user, period=period, membership=membership)
    daily = selectors.usage_daily(everything, period)
    chart_data = {
        "days": [row["day"].isoformat() for row in daily],
        "requests": [row["requests"] for row in daily],
        "errors": [row["errors"] for row in daily],
        "prompt_tokens": [row["prompt_tokens"] for row in daily],
        "completion_tokens": [row["completion_tokens"] for row in daily],
    }
    recent = Paginator(_filtered_rows(request, form, membership), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    by_model = selectors.usage_by(everything, "model")
    spend, spend_total = selectors.usage_spend(by_model)
    context = {
        "membership": membership,
        "budget": _budget(request, membership),
        "by_member": selectors.usage_by(everything, "user__email") if membership and membership.manages else None,
        "spend": spend,
        "spend_total": spend_total,
        "form": form,
        "period": period,
        "totals": selectors.usage_totals(everything),
        "latency": selectors.latency_percentiles(everything),
        "daily": daily,
        "chart_data": chart_data,
        "by_model": by_model,
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
    membership = _scope(request)
    form = _filter_form(request, membership)
    if not form.is_valid():
        return HttpResponse(_("Invalid date range or filter."), status=400, content_type="text/plain")
    period = form.cleaned_data["period"]
    rows = _filtered_rows(request, form, membership).iterator(chunk_size=2000)
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


@login_required
def alert_settings(request: AuthenticatedRequest) -> HttpResponseBase:
    """Your monthly budget this month and where its alerts go (e-mail, and a signed webhook)."""
    user = request.user
    form = AlertSettingsForm(request.POST or None, initial={"alert_webhook_url": user.alert_webhook_url})
    if request.method == "POST" and form.is_valid():
        org_services.user_alert_settings_update(user=user, alert_webhook_url=form.cleaned_data["alert_webhook_url"])
        messages.success(request, _("Alert settings saved."))
        return redirect("alert-settings")
    context = {
        "form": form,
        "budget": budgets.budget_status(f"user:{user.pk}"),
        "webhook_secret": user.alert_webhook_secret,
    }
    response = render(request, "usage/alerts.html", context, status=400 if form.errors else 200)
    response["Cache-Control"] = "no-store"  # the webhook secret
    return response
