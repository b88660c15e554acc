"""DRF authentication with issued API keys: `Authorization: Bearer <key>` (OpenAI style)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.exceptions import ApiKeyRejected
from accounts.services import api_key_authenticate


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_ip(request) -> str:
    from django.conf import settings

    value = request.META.get(settings.RATELIMIT_IP_META_KEY, "") or request.META.get("REMOTE_ADDR", "")
    return value.split(",")[0].strip()


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates requests carrying an issued API key; `request.auth` is the ApiKey row."""

    def authenticate(self, request):
        raw_key = bearer_token(request)
        if raw_key is None:
            return None
        try:
            api_key = api_key_authenticate(raw_key=raw_key, client_ip=client_ip(request))
        except ApiKeyRejected as exc:
            error = exceptions.PermissionDenied if exc.status == 403 else exceptions.AuthenticationFailed
            raise error(str(exc), code=exc.code) from exc
        return api_key.user, api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
