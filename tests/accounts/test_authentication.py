"""Every way ApiKeyAuthentication can reject a key, and what it accepts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts import keys, services
from accounts.authentication import ApiKeyAuthentication
from accounts.models import ApiKey


class WhoAmI(APIView):
    authentication_classes = [ApiKeyAuthentication]

    def get(self, request):
        return Response({"user": request.user.email, "key": request.auth.name})


def call(raw_key: str | None, *, ip: str = "127.0.0.1"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"} if raw_key is not None else {}
    request = APIRequestFactory().get("/whoami", REMOTE_ADDR=ip, **headers)
    return WhoAmI.as_view()(request)


def test_valid_key_authenticates_its_owner(owner, owner_key):
    response = call(owner_key)
    assert response.status_code == 200
    assert response.data == {"user": owner.email, "key": "owner key"}


def test_missing_key_is_401_with_bearer_challenge(db):
    response = call(None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_malformed_key_is_rejected_without_a_query(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = call("llmos_not-a-real-key")
    assert response.status_code == 401
    assert response.data["detail"].code == "invalid_api_key"


def test_unknown_well_formed_key_is_401(db):
    response = call(keys.generate_key())
    assert response.status_code == 401
    assert response.data["detail"].code == "invalid_api_key"


def test_revoked_key_is_rejected(owner, owner_key):
    call(owner_key)  # warm the cache: revocation must still take effect at once
    services.api_key_revoke(api_key=ApiKey.objects.get(user=owner))
    response = call(owner_key)
    assert response.status_code == 401
    assert response.data["detail"].code == "api_key_revoked"


def test_expired_key_is_rejected(owner):
    api_key, raw_key = services.api_key_create(
        user=owner, name="short", expires_at=timezone.now() + timedelta(seconds=30)
    )
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = call(raw_key)
    assert response.status_code == 401
    assert response.data["detail"].code == "api_key_expired"


def test_key_of_deactivated_user_is_rejected(owner, owner_key):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    response = call(owner_key)
    assert response.status_code == 401
    assert response.data["detail"].code == "account_inactive"


@pytest.mark.parametrize(
    ("allowed", "ip", "status"),
    [
        (["10.1.0.0/16"], "10.1.2.3", 200),
        (["10.1.0.0/16"], "10.2.0.1", 403),
        (["192.0.2.7"], "192.0.2.7", 200),
        (["2001:db8::/32"], "2001:db8::1", 200),
        (["2001:db8::/32"], "127.0.0.1", 403),
    ],
)
def test_ip_allow_list(owner, allowed, ip, status):
    _, raw_key = services.api_key_create(user=owner, name="ip", allowed_ips=allowed)
    response = call(raw_key, ip=ip)
    assert response.status_code == status
    if status == 403:
        assert response.data["detail"].code == "ip_not_allowed"


def test_last_used_is_written_once_per_interval_not_per_request(owner, owner_key, django_assert_num_queries):
    call(owner_key)
    api_key = ApiKey.objects.get(user=owner)
    assert api_key.last_used_at is not None
    with django_assert_num_queries(0):  # cached key, last-used already fresh: no database at all
        for _ in range(5):
            assert call(owner_key).status_code == 200
