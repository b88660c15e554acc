"""Optional TOTP two-factor authentication: enrol (secret + QR, confirmed by a first code),
verify at login (a code, or a one-time recovery code), disable. Staff must enrol when
REQUIRE_STAFF_2FA is on (see accounts.middleware)."""

from __future__ import annotations

import hashlib
import io
import secrets

import pyotp
import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import RecoveryCode, TotpDevice, User

RECOVERY_CODE_COUNT = 10
ISSUER = "LLM OS Portal"


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().lower().replace("-", "").encode()).hexdigest()


def confirmed_device(*, user: User) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()


def has_two_factor(*, user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def two_factor_required(*, user: User) -> bool:
    """Staff must use two-factor authentication when REQUIRE_STAFF_2FA is on."""
    return bool(settings.REQUIRE_STAFF_2FA and user.is_staff)


def totp_enrol_start(*, user: User) -> TotpDevice:
    """A new, unconfirmed secret (replacing an unconfirmed one); a confirmed device stays as is."""
    device = TotpDevice.objects.filter(user=user).first()
    if device is not None and device.is_confirmed:
        return device
    if device is None:
        return TotpDevice.objects.create(user=user, secret=pyotp.random_base32())
    device.secret = pyotp.random_base32()
    device.save(update_fields=["secret"])
    return device


def provisioning_uri(device: TotpDevice) -> str:
    return pyotp.TOTP(device.secret).provisioning_uri(name=device.user.email, issuer_name=ISSUER)


def qr_svg(device: TotpDevice) -> bytes:
    """The provisioning URI as an SVG QR code (served as its own image: no inline markup)."""
    buffer = io.BytesIO()
    segno.make(provisioning_uri(device), error="m").save(buffer, kind="svg", scale=5)
    return buffer.getvalue()


def _accept_code(device: TotpDevice, code: str) -> bool:
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return False
    totp = pyotp.TOTP(device.secret)
    now = timezone.now()
    for offset in (-1, 0, 1):  # one step of clock drift either way
        at = int(now.timestamp()) + offset * totp.interval
        step = int(at // totp.interval)
        if step > device.last_used_step and secrets.compare_digest(totp.at(at), code):
            device.last_used_step = step
            device.save(update_fields=["last_used_step"])
            return True
    return False


@transaction.atomic
def totp_enrol_confirm(*, user: User, code: str) -> list[str] | None:
    """Confirm enrolment with a first code; returns the new recovery codes (shown once), or None
    when the code is wrong."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
    if device is None or not _accept_code(device, code):
        return None
    device.confirmed_at = timezone.now()
    device.save(update_fields=["confirmed_at"])
    return recovery_codes_regenerate(user=user)


def recovery_codes_regenerate(*, user: User) -> list[str]:
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, digest=_digest(code)) for code in codes])
    return codes


@transaction.atomic
def two_factor_verify(*, user: User, code: str) -> bool:
    """A current TOTP code (each accepted once) or an unused recovery code (then spent)."""
    device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return False
    if _accept_code(device, code):
        return True
    spent = RecoveryCode.objects.filter(user=user, digest=_digest(code), used_at__isnull=True).update(
        used_at=timezone.now()
    )
    return spent == 1


@transaction.atomic
def two_factor_disable(*, user: User) -> None:
    TotpDevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
