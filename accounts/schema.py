"""OpenAPI description of API-key authentication (imported by AccountsConfig.ready)."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "llmos_<36 characters>",
            "description": "An API key from the portal: `Authorization: Bearer llmos_...`",
        }


class RevocableJWTScheme(SimpleJWTScheme):
    """The portal's JWT authentication is simplejwt's plus an epoch check: the same scheme."""

    target_class = "accounts.jwt.RevocableJWTAuthentication"
