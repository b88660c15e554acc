from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.urls import api_urls as account_api_urls
from accounts.urls import page_urls as account_page_urls
from inference import dashboard
from inference.urls import native_urls, openai_urls
from inference.usage_api import UsageView
from llmos_portal import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("console/usage/", dashboard.usage_page, name="usage"),
    path("console/usage/export.csv", dashboard.usage_export, name="usage-export"),
    path("console/operators/usage/", dashboard.operator_overview, name="operator-usage"),
    path("api/usage/", UsageView.as_view(), name="api-usage"),
    path("v1/", include(openai_urls)),
    path("api/v1/", include(native_urls)),
    path("api/", include(account_api_urls)),
    path("playground/", include("playground.urls")),
    path("", include(account_page_urls)),
]
