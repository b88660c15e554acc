"""The request being served, for audit records written where no request is at hand (services,
signal receivers): its client address and request id go into the record."""

from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest

from llmos_portal.middleware import AsyncCapableMiddleware

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_current_request", default=None)


def current_request() -> HttpRequest | None:
    return _current_request.get()


class AuditRequestMiddleware(AsyncCapableMiddleware):
    """Makes the request visible to audit.services.audit_record for as long as it is served
    (context variables follow sync_to_async into its thread)."""

    def handle(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)

    async def __acall__(self, request):
        token = _current_request.set(request)
        try:
            return await self.get_response(request)
        finally:
            _current_request.reset(token)
