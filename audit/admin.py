"""Operators read the whole audit log here: filters, search, CSV of the selection. Nothing can
be added, changed or deleted."""

from __future__ import annotations

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils.translation import gettext_lazy as _

from audit import admin_mirror  # noqa: F401 - installs the audited site-wide delete action
from audit.exports import csv_lines
from audit.models import AuditEvent
from audit.selectors import audit_event_for_operator


@admin.action(description=_("Download the selected events as CSV"))
def export_csv(modeladmin, request, queryset):
    events = queryset.order_by("-created_at", "-id").iterator(chunk_size=2000)
    response = StreamingHttpResponse(
        csv_lines(audit_event_for_operator(event) for event in events), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_repr", "target_type", "target_repr", "org_id", "ip", "request_id"]
    list_filter = ["action", "created_at", ("actor", admin.RelatedOnlyFieldListFilter), "target_type"]
    search_fields = ["actor_repr", "target_repr", "target_id", "request_id", "=ip", "=org_id"]
    date_hierarchy = "created_at"
    actions = [export_csv]
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over the whole log on every page

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
