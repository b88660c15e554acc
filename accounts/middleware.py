"""Site-wide checks: operators' IP allow/deny lists; staff two-factor authentication when
REQUIRE_STAFF_2FA is on."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import escape

from llmos_portal.db import db_sync_to_async
from llmos_portal.middleware import AsyncCapableMiddleware

# API-key and machine endpoints (no session) and the pages needed to set up or leave.
_EXEMPT_PREFIXES = ("/v1/", "/api/", "/healthz", "/readyz", "/metrics", "/static/", "/logout/", "/login/")


class StaffTwoFactorMiddleware(AsyncCapableMiddleware):
    """Sends a signed-in staff member without two-factor authentication to set it up first."""

    def _applies(self, request) -> bool:
        if not settings.REQUIRE_STAFF_2FA or request.path.startswith(_EXEMPT_PREFIXES):
            return False
        return not request.path.startswith(reverse("two-factor"))

    def _must_enrol(self, user) -> bool:
        from accounts import two_factor

        return bool(user.is_authenticated and user.is_staff and not two_factor.has_two_factor(user=user))

    def handle(self, request):
        if self._applies(request) and self._must_enrol(request.user):
            return redirect("two-factor")
        return self.get_response(request)

    async def __acall__(self, request):
        if self._applies(request):
            user = await request.auser()
            if await sync_to_async(self._must_enrol)(user):
                return redirect("two-factor")
        return await self.get_response(request)


_HEALTH_PROBES = ("/healthz", "/readyz")


def ip_refusal(request, rules):
    """A 403 for a request the rules exclude (OpenAI's error shape on the inference API, a plain
    page elsewhere), or None."""
    from accounts.authentication import client_ip
    from accounts.ip_rules import is_api_path, refused

    address = client_ip(request)
    api = is_api_path(request.path)
    if not refused(rules, address, api=api):
        return None
    message = f"Requests from {address} are not allowed."
    if api:
        body = {"error": {"message": message, "type": "permission_error", "param": None, "code": "ip_not_allowed"}}
        return JsonResponse(body, status=403)
    return HttpResponseForbidden(
        f"<!doctype html><title>Forbidden</title><h1>Forbidden</h1><p>{escape(message)}</p>",
        content_type="text/html; charset=utf-8",
    )


async def aip_refusal(request):
    """ip_refusal for async code: the rules are parsed per process, so the event loop reads the
    database (in a thread) at most once per RULES_TTL_SECONDS."""
    from accounts.ip_rules import current_rules, process_rules

    rules = process_rules.current()
    if rules is None:
        rules = await db_sync_to_async(current_rules)()
    return ip_refusal(request, rules)


class IpRulesMiddleware(AsyncCapableMiddleware):
    """Refuses requests from addresses the operators' IP rules exclude. Health probes are exempt."""

    def handle(self, request):
        from accounts.ip_rules import current_rules

        if request.path in _HEALTH_PROBES:
            return self.get_response(request)
        return ip_refusal(request, current_rules()) or self.get_response(request)

    async def __acall__(self, request):
        if request.path in _HEALTH_PROBES:
            return await self.get_response(request)
        return await aip_refusal(request) or await self.get_response(request)
