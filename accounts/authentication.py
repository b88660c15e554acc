"""DRF authentication with issued API keys: `Authorization: Bearer <key>` (OpenAI style)."""

from __future__ import annotations

import functools
import ipaddress

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


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> Networks:
    return tuple(ipaddress.ip_network(item, strict=False) for item in proxies)


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request) -> str:
    """The caller's address, for limits, key IP allow-lists and the site's IP rules."""
    return client_address(request.META.get("REMOTE_ADDR", "") or "", request.META.get("HTTP_X_FORWARDED_FOR", ""))


def client_address(remote: str, forwarded_for: str) -> str:
    """The peer address unless that peer is a proxy listed in TRUSTED_PROXIES; then
    X-Forwarded-For is read from the right, skipping trusted proxies, and the first address that
    is not one of them is the client (entries further left are whatever the client sent).
    """
    from django.conf import settings

    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not _trusted(remote, networks):
        return remote
    forwarded = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    for address in reversed(forwarded):
        if not _trusted(address, networks):
            return address
    return forwarded[0] if forwarded else remote


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
