"""API key format: `llmos_` + 30 random base62 characters + a 6-character CRC32 checksum.

The recognisable prefix lets secret scanners spot leaked keys; the checksum lets us reject a
mistyped or made-up key without touching the database (GitHub's token format does the same).
Only the SHA-256 digest and a short visible prefix are ever stored.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import zlib

from django.conf import settings

ALPHABET = string.digits + string.ascii_letters  # base62
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
VISIBLE_PREFIX_LENGTH = 8  # random characters shown after the prefix, e.g. "llmos_Ab12Cd34"


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, remainder = divmod(number, 62)
        chars.append(ALPHABET[remainder])
    return "".join(reversed(chars)).rjust(width, "0")


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def key_prefix() -> str:
    return f"{settings.API_KEY_PREFIX}_"


def generate_key() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return f"{key_prefix()}{random_part}{_checksum(random_part)}"


def is_well_formed(raw_key: str) -> bool:
    """True if the key has our prefix, length, alphabet and a matching checksum."""
    prefix = key_prefix()
    if len(raw_key) != len(prefix) + RANDOM_LENGTH + CHECKSUM_LENGTH or not raw_key.startswith(prefix):
        return False
    body = raw_key[len(prefix) :]
    if any(char not in ALPHABET for char in body):
        return False
    random_part, checksum = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
    return secrets.compare_digest(_checksum(random_part), checksum)


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def visible_prefix(raw_key: str) -> str:
    return raw_key[: len(key_prefix()) + VISIBLE_PREFIX_LENGTH]
