"""The URL map: pages people use, the APIs programs call, and what operators and monitors read."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import urls as accounts_urls
from accounts import views as account_views
from audit import urls as audit_urls
from batches import urls as batches_urls
from inference.openai_views import not_found as openai_not_found
from inference.urls import native_urls, openai_urls
from knowledge import urls as knowledge_urls
from llmos_portal import views
from usage import urls as usage_urls

console_urls: list[URLPattern | URLResolver] = [
    *accounts_urls.console_urls,
    *usage_urls.console_urls,
    *batches_urls.console_urls,
    *audit_urls.console_urls,
    *knowledge_urls.console_urls,
]
portal_api_urls: list[URLPattern | URLResolver] = [
    *accounts_urls.api_urls,
    *usage_urls.api_urls,
    *audit_urls.api_urls,
]

urlpatterns = [
    # Pages: sign-up and login, the console (keys, usage), the playground.
    path("", include(accounts_urls.page_urls)),
    path("console/", include(console_urls)),
    path("playground/", include("playground.urls")),
    # The language switcher (POST i18n/setlang/) and the browser code's strings in the page's language.
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["llmos_portal"]), name="javascript-catalog"),
    # The inference APIs, with API keys: OpenAI-compatible and native tasks.
    path("v1/", include(openai_urls)),
    re_path(r"^v1$", openai_not_found),  # OpenAI's 404, not a slash redirect (which loses a POST)
    path("api/v1/", include(native_urls)),
    # The portal's own JSON API (JWT or session) and its OpenAPI schema.
    path("api/", include(portal_api_urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Operators and monitors.
    # Usage rows moved from the inference app to usage/: old admin bookmarks still work.
    path("admin/inference/usagerecord/", RedirectView.as_view(url="/admin/usage/usagerecord/", query_string=True)),
    path("admin/login/", account_views.admin_login, name="admin-login"),  # throttled like the login page
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    # Unknown API paths answer JSON (DRF's shape), also under DEBUG, never an HTML page.
    re_path(r"^api/", views.api_not_found),
]

handler404 = "llmos_portal.views.not_found"
