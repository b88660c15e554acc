from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from usage import api, views

# Under /console/, beside the key pages (accounts.urls.console_urls).
console_urls: list[URLPattern | URLResolver] = [
    path("usage/", views.usage_page, name="usage"),
    path("usage/export.csv", views.usage_export, name="usage-export"),
    path("usage/alerts/", views.alert_settings, name="alert-settings"),
    path("operators/usage/", views.operator_overview, name="operator-usage"),
]

# Under /api/, the portal's JSON API.
api_urls: list[URLPattern | URLResolver] = [
    path("usage/", api.UsageView.as_view(), name="api-usage"),
]
