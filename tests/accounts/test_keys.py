from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts import keys, services
from accounts.exceptions import ApiKeyLimitReached
from accounts.models import ApiKey


def test_generated_key_has_prefix_and_valid_checksum():
    raw_key = keys.generate_key()
    assert raw_key.startswith("llmos_")
    assert keys.is_well_formed(raw_key)


def test_one_changed_character_breaks_the_checksum():
    raw_key = keys.generate_key()
    position = len("llmos_") + 3
    replacement = "a" if raw_key[position] != "a" else "b"
    mistyped = raw_key[:position] + replacement + raw_key[position + 1 :]
    assert not keys.is_well_formed(mistyped)
    assert not keys.is_well_formed(raw_key[:-1])
    assert not keys.is_well_formed("sk-" + raw_key[6:])


def _all_text_in_database() -> str:
    """Every value of every table, as text: what an attacker with a database dump would see."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(str(row) for row in cursor.fetchall())
    return "\n".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_raw_key_appears_nowhere_in_the_database(owner):
    api_key, raw_key = services.api_key_create(user=owner, name="secret")
    rotated, rotated_raw = services.api_key_rotate(api_key=api_key)
    dump = _all_text_in_database()
    assert raw_key not in dump and rotated_raw not in dump
    random_part = raw_key[len("llmos_") :]
    assert random_part[:20] not in dump
    assert api_key.digest in dump  # only the digest is kept
    assert rotated.prefix == rotated_raw[: len(rotated.prefix)]


def test_key_lifecycle_create_rename_rotate_revoke(owner):
    api_key, raw_key = services.api_key_create(
        user=owner, name="ci", allowed_models=["SmolLM2-135M-Instruct"], allowed_ips=["10.0.0.0/8"]
    )
    assert api_key.status == "active" and api_key.prefix == keys.visible_prefix(raw_key)

    services.api_key_rename(api_key=api_key, name="ci-renamed")
    api_key.refresh_from_db()
    assert api_key.name == "ci-renamed"

    ApiKey.objects.filter(pk=api_key.pk).update(requests_per_minute=7)
    api_key.refresh_from_db()
    new_key, new_raw = services.api_key_rotate(api_key=api_key)
    api_key.refresh_from_db()
    assert api_key.status == "revoked"
    assert new_key.rotated_from == api_key and new_raw != raw_key
    assert new_key.name == "ci-renamed" and new_key.allowed_ips == ["10.0.0.0/8"]
    assert new_key.allowed_models == ["SmolLM2-135M-Instruct"] and new_key.requests_per_minute == 7

    services.api_key_revoke(api_key=new_key)
    assert new_key.status == "revoked"
    with pytest.raises(ValidationError):
        services.api_key_rotate(api_key=new_key)


@override_settings(MAX_ACTIVE_KEYS_PER_USER=2)
def test_active_key_limit_counts_only_active_keys(owner):
    first, _ = services.api_key_create(user=owner, name="one")
    services.api_key_create(user=owner, name="two")
    with pytest.raises(ApiKeyLimitReached):
        services.api_key_create(user=owner, name="three")
    services.api_key_revoke(api_key=first)
    services.api_key_create(user=owner, name="three")


def test_expiry_in_the_past_is_refused(owner):
    with pytest.raises(ValidationError):
        services.api_key_create(user=owner, name="old", expires_at=timezone.now() - timedelta(minutes=1))


def test_bad_ip_allow_list_is_refused(owner):
    with pytest.raises(ValidationError):
        services.api_key_create(user=owner, name="bad", allowed_ips=["not-an-ip"])


def test_create_api_key_command_prints_key_once(owner, capsys):
    call_command("create_api_key", owner.username, "--name", "script")
    printed = capsys.readouterr().out.strip()
    assert keys.is_well_formed(printed)
    assert ApiKey.objects.get(user=owner, name="script").digest == keys.digest(printed)
