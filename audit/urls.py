from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from audit import api, views

# Under /console/, beside the key and usage pages.
console_urls: list[URLPattern | URLResolver] = [
    path("audit/", views.audit_page, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
]

# Under /api/, the portal's JSON API.
api_urls: list[URLPattern | URLResolver] = [
    path("audit/", api.AuditEventListView.as_view(), name="api-audit"),
]
