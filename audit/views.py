"""The audit page (/console/audit/) and its CSV export: the caller's own events."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.translation import gettext

from accounts.org_selectors import org_ids_of
from accounts.typing import AuthenticatedRequest
from audit.exports import csv_lines
from audit.forms import AuditFilterForm
from audit.selectors import audit_event_for_viewer, audit_events_for_user

PAGE_SIZE = 50


def _events(request: AuthenticatedRequest, form: AuditFilterForm):
    data = form.cleaned_data
    return audit_events_for_user(
        user=request.user,
        org_ids=org_ids_of(user=request.user),
        action=data.get("action") or "",
        start=data.get("start"),
        end=data.get("end"),
    )


@login_required
def audit_page(request: AuthenticatedRequest) -> HttpResponseBase:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/audit.html", {"form": form}, status=400)
    page = Paginator(_events(request, form), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "results": True,
        "page": page,
        "rows": [audit_event_for_viewer(event, viewer=request.user) for event in page],
        "query": query.urlencode(),
    }
    return render(request, "audit/audit.html", context)


@login_required
def audit_export(request: AuthenticatedRequest) -> HttpResponseBase:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(gettext("Invalid date range or filter."), status=400, content_type="text/plain")
    viewer = request.user
    events = _events(request, form).iterator(chunk_size=2000)
    rows = (audit_event_for_viewer(event, viewer=viewer) for event in events)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    response["Cache-Control"] = "no-store"
    return response
