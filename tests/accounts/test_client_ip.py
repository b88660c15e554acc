"""The client address used for limits and IP allow-lists: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from django.test import RequestFactory, override_settings

from accounts.authentication import client_ip


def _request(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


@override_settings(TRUSTED_PROXIES=[])
def test_forwarded_header_is_ignored_when_no_proxy_is_trusted():
    assert client_ip(_request("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8"])
def test_forwarded_header_is_ignored_from_an_untrusted_peer():
    assert client_ip(_request("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


@override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "127.0.0.1"])
def test_nearest_untrusted_hop_is_the_client_behind_trusted_proxies():
    # The client sent a forged first entry; nginx appended the real peer; a second proxy its own.
    assert client_ip(_request("127.0.0.1", "1.2.3.4, 198.51.100.9, 10.1.2.3")) == "198.51.100.9"


@override_settings(TRUSTED_PROXIES=["127.0.0.1"])
def test_trusted_proxy_without_a_forwarded_header_is_the_client():
    assert client_ip(_request("127.0.0.1")) == "127.0.0.1"
