"""Staff must set up two-factor authentication when REQUIRE_STAFF_2FA is on."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

# API-key and machine endpoints (no session) and the pages needed to set up or leave.
_EXEMPT_PREFIXES = ("/v1/", "/api/", "/healthz", "/readyz", "/metrics", "/static/", "/logout/", "/login/")


class StaffTwoFactorMiddleware:
    """Sends a signed-in staff member without two-factor authentication to set it up first."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _applies(self, request) -> bool:
        if not settings.REQUIRE_STAFF_2FA or request.path.startswith(_EXEMPT_PREFIXES):
            return False
        return not request.path.startswith(reverse("two-factor"))

    def _must_enrol(self, user) -> bool:
        from accounts import two_factor

        return bool(user.is_authenticated and user.is_staff and not two_factor.has_two_factor(user=user))

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        if self._applies(request) and self._must_enrol(request.user):
            return redirect("two-factor")
        return self.get_response(request)

    async def __acall__(self, request):
        if self._applies(request):
            user = await request.auser()
            if await sync_to_async(self._must_enrol)(user):
                return redirect("two-factor")
        return await self.get_response(request)
