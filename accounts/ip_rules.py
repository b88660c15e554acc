"""Operators' IP allow and deny lists (accounts.models.IpRule), applied to the real client address
(accounts.authentication.client_ip, which honours TRUSTED_PROXIES behind a proxy).

The rules are cached: parsed per process for RULES_TTL_SECONDS, from the shared cache (dropped by
signals whenever a rule changes, so every worker sees a change within RULES_TTL_SECONDS).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger(__name__)

CACHE_KEY = "iprules:v1"
RULES_TTL_SECONDS = 10.0
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rules:
    site_allow: tuple[IpNetwork, ...] = ()
    site_deny: tuple[IpNetwork, ...] = ()
    api_allow: tuple[IpNetwork, ...] = ()
    api_deny: tuple[IpNetwork, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.site_allow or self.site_deny or self.api_allow or self.api_deny)


def _parse(rows: list[tuple[str, str, str]]) -> Rules:
    lists: dict[str, list[IpNetwork]] = {"site_allow": [], "site_deny": [], "api_allow": [], "api_deny": []}
    for scope, action, network in rows:
        try:
            lists[f"{scope}_{action}"].append(ipaddress.ip_network(network, strict=False))
        except (KeyError, ValueError):
            continue  # the admin validates; a bad row must not take the site down
    return Rules(**{name: tuple(values) for name, values in lists.items()})


def _rows_from_database() -> list[tuple[str, str, str]]:
    from accounts.models import IpRule

    return list(IpRule.objects.filter(enabled=True).values_list("scope", "action", "network"))


def load_rules() -> Rules:
    """The rules, from the shared cache or the database (blocking: call from a thread when async).

    If they can't be read (the database is down) the last rules this process knew stay in force;
    a process that never read any applies none, and logs it."""
    try:
        rows = cache.get(CACHE_KEY)
        if rows is None:
            rows = _rows_from_database()
            cache.set(CACHE_KEY, rows, None)
    except Exception:
        logger.exception("could not read the IP rules; keeping the last ones known")
        return process_rules.last or Rules()
    return _parse(rows)


class _ProcessRules:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: Rules | None = None
        self._until = 0.0

    def current(self) -> Rules | None:
        """The rules if still fresh here, else None (the caller loads them)."""
        with self._lock:
            return self._rules if time.monotonic() < self._until else None

    def keep(self, rules: Rules) -> None:
        with self._lock:
            self._rules, self._until = rules, time.monotonic() + RULES_TTL_SECONDS

    @property
    def last(self) -> Rules | None:
        return self._rules

    def forget(self) -> None:
        with self._lock:
            self._until = 0.0  # reload at the next request (the old rules stay as a fallback)

    def reset(self) -> None:
        with self._lock:
            self._rules, self._until = None, 0.0


process_rules = _ProcessRules()


def ip_rules_forget() -> None:
    """Drop the cached rules (signals call this when a rule changes)."""
    cache.delete(CACHE_KEY)
    process_rules.forget()


def is_api_path(path: str) -> bool:
    return path.startswith(("/v1/", "/api/v1/")) or path == "/v1"


def refused(rules: Rules, address: str, *, api: bool) -> bool:
    """True if `address` may not make this request: a deny rule matches, or allow rules exist
    for a scope and none matches. An unparseable address is refused whenever rules exist."""
    if rules.empty:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    scopes = [(rules.site_allow, rules.site_deny)]
    if api:
        scopes.append((rules.api_allow, rules.api_deny))
    for allow, deny in scopes:
        if any(ip in network for network in deny):
            return True
        if allow and not any(ip in network for network in allow):
            return True
    return False


def client_ip_from_scope(scope: dict) -> str:
    """The client address of an ASGI (websocket) scope, read as client_ip reads a request."""
    from accounts.authentication import client_address

    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope.get("headers") or () if name.lower() == b"x-forwarded-for"
    )
    client = scope.get("client") or ("", 0)
    return client_address(str(client[0]), forwarded)


def current_rules() -> Rules:
    """The rules, cached per process (blocking on a miss: call from a thread when async)."""
    rules = process_rules.current()
    if rules is None:
        rules = load_rules()
        process_rules.keep(rules)
    return rules
