"""Domain errors raised by account services. Views map them to form errors or HTTP answers."""

from __future__ import annotations


class AccountError(Exception):
    code = "account_error"


class ApiKeyLimitReached(AccountError):
    code = "api_key_limit_reached"


class ApiKeyRejected(AccountError):
    """The presented API key can't be used. `status` is the HTTP status to answer with."""

    code = "invalid_api_key"
    status = 401


class MalformedApiKey(ApiKeyRejected):
    code = "invalid_api_key"


class UnknownApiKey(ApiKeyRejected):
    code = "invalid_api_key"


class RevokedApiKey(ApiKeyRejected):
    code = "api_key_revoked"


class ExpiredApiKey(ApiKeyRejected):
    code = "api_key_expired"


class InactiveAccount(ApiKeyRejected):
    code = "account_inactive"


class IpNotAllowed(ApiKeyRejected):
    code = "ip_not_allowed"
    status = 403
