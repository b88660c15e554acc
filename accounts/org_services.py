"""Writes for organizations: creation, invitations, members and roles, keys, settings, deletion.

Roles: an owner may do everything (settings, roles, deleting the organization); an admin manages
members who are not owners, invitations (not as owner) and every key of the organization; a member
creates keys of the organization (attributed to them) and manages their own. The last owner can
neither leave nor be demoted or removed. Removing a member (or a member leaving) revokes the keys
they created in the organization.

Callers pass the acting member's Membership (from accounts.org_selectors.membership_for, which
answers 404 to non-members); a rule broken raises OrganizationPermissionDenied (403) or
ValidationError (a form error / 400).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import datetime

from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services
from accounts.models import ApiKey, Invitation, Membership, Organization, User
from audit.models import AuditAction
from audit.services import audit_record

INVITATION_SALT = "accounts.organization-invitation"
INVITATION_MAX_AGE_SECONDS = 7 * 86_400

Role = Membership.Role


class OrganizationPermissionDenied(PermissionDenied):
    """The member's role does not allow this (403)."""


class InvitationInvalid(Exception):
    """The invitation link is forged, expired, used, withdrawn, or for another address."""


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def _require_manager(membership: Membership) -> None:
    if not membership.manages:
        raise OrganizationPermissionDenied(_("Only owners and admins can do this."))


def _require_owner(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        raise OrganizationPermissionDenied(_("Only owners can do this."))


def _owner_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def _lock(organization: Organization) -> None:
    """Serialise changes to one organization's members (the last-owner rule holds under races)."""
    Organization.objects.select_for_update().filter(pk=organization.pk).first()


@transaction.atomic
def organization_create(*, user: User, name: str) -> Organization:
    """A new organization with `user` as its owner."""
    organization = Organization.objects.create(name=name.strip(), alert_webhook_secret=new_webhook_secret())
    Membership.objects.create(organization=organization, user=user, role=Role.OWNER)
    audit_record(action=AuditAction.ORG_CREATE, actor=user, target=organization, org_id=organization.pk)
    return organization


def organization_update(
    *,
    membership: Membership,
    name: str,
    monthly_token_budget: int | None,
    alert_webhook_url: str,
) -> Organization:
    """Owners and admins change the name, the monthly token budget and the alert webhook."""
    _require_manager(membership)
    organization = membership.organization
    organization.name = name.strip()
    organization.monthly_token_budget = monthly_token_budget
    organization.alert_webhook_url = alert_webhook_url
    if not organization.alert_webhook_secret:
        organization.alert_webhook_secret = new_webhook_secret()
    organization.save(update_fields=["name", "monthly_token_budget", "alert_webhook_url", "alert_webhook_secret"])
    audit_record(
        action=AuditAction.ORG_CHANGE,
        actor=membership.user,
        target=organization,
        org_id=organization.pk,
        metadata={
            "name": organization.name,
            "monthly_token_budget": organization.monthly_token_budget,
            "alert_webhook": bool(organization.alert_webhook_url),  # the URL may carry a token
        },
    )
    services.api_key_cache_forget_for_organization(organization=organization)  # the budget is cached with keys
    return organization


@transaction.atomic
def organization_delete(*, membership: Membership) -> None:
    """Owners only. Its keys stop working at once; its keys, members, invitations and usage go."""
    _require_owner(membership)
    organization = membership.organization
    _revoke_keys(ApiKey.objects.filter(organization=organization), actor=membership.user)
    audit_record(action=AuditAction.ORG_DELETE, actor=membership.user, target=organization, org_id=organization.pk)
    organization.delete()


def _revoke_keys(keys: Iterable[ApiKey], *, actor: User) -> int:
    count = 0
    for api_key in keys:
        if api_key.revoked_at is None:
            count += 1
        services.api_key_revoke(api_key=api_key, actor=actor)
    return count


# --- invitations ------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """The signed, timestamped token of an invitation link (valid INVITATION_MAX_AGE_SECONDS)."""
    return signing.dumps({"invitation": invitation.pk, "email": invitation.email}, salt=INVITATION_SALT)


def invitation_create(*, membership: Membership, email: str, role: str, link_for: Callable[[str], str]) -> Invitation:
    """Invite an address (owners and admins; only an owner may invite an owner) and e-mail it the
    link `link_for(token)`. An earlier pending invitation of the same address is replaced."""
    _require_manager(membership)
    if role not in Role.values:
        raise ValidationError(_("Unknown role."))
    if role == Role.OWNER and membership.role != Role.OWNER:
        raise OrganizationPermissionDenied(_("Only owners can invite owners."))
    if not services.email_can_be_sent():  # the link would only be printed to the server's log
        raise ValidationError(services.EMAIL_NOT_CONFIGURED_MESSAGE)
    organization = membership.organization
    email = User.objects.normalize_email(email).strip().lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError(_("%(email)s is already a member.") % {"email": email})
    with transaction.atomic():
        Invitation.objects.filter(organization=organization, email=email, accepted_at__isnull=True).delete()
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, invited_by=membership.user
        )
        audit_record(
            action=AuditAction.ORG_INVITE,
            actor=membership.user,
            target=organization,
            org_id=organization.pk,
            metadata={"email": email, "role": role},
        )
    link = link_for(invitation_token(invitation))
    days = INVITATION_MAX_AGE_SECONDS // 86_400
    send_mail(
        _("You are invited to %(organization)s on LLM OS Portal") % {"organization": organization.name},
        _(
            "%(inviter)s invites you to join the organization “%(organization)s” as %(role)s.\n\n"
            "Accept with the account of this address (%(email)s), signing up first if you have none:\n\n"
            "%(link)s\n\nThe link is valid for %(days)s days."
        )
        % {
            "inviter": membership.user.email,
            "organization": organization.name,
            "role": invitation.get_role_display(),
            "email": email,
            "link": link,
            "days": days,
        },
        None,
        [email],
    )
    return invitation


def invitation_revoke(*, membership: Membership, invitation: Invitation) -> None:
    _require_manager(membership)
    if invitation.role == Role.OWNER and membership.role != Role.OWNER:
        raise OrganizationPermissionDenied(_("Only owners can withdraw an invitation to be an owner."))
    invitation.delete()


def invitation_from_token(*, token: str, user: User) -> Invitation:
    """The pending invitation a link names, if it is for `user`'s address; else InvitationInvalid."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise InvitationInvalid(_("This invitation has expired. Ask for a new one.")) from exc
    except signing.BadSignature as exc:
        raise InvitationInvalid(_("This invitation link is not valid.")) from exc
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(pk=data.get("invitation"), email=data.get("email"), accepted_at__isnull=True)
        .first()
    )
    if invitation is None:
        raise InvitationInvalid(_("This invitation was already used or withdrawn."))
    if invitation.email.lower() != user.email.lower():
        raise InvitationInvalid(
            _("This invitation is for another e-mail address. Log in with the account of that address to accept it.")
        )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the organization with the invited role (needs the account of the invited address)."""
    invitation = invitation_from_token(token=token, user=user)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise InvitationInvalid(_("This invitation was already used or withdrawn."))
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    membership, created = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    if created:
        audit_record(
            action=AuditAction.ORG_MEMBER_ADD,
            actor=user,
            target=membership.organization,
            subject=user,
            org_id=membership.organization_id,
            metadata={"member": user.email, "role": membership.role},
        )
    return membership


# --- members ----------------------------------------------------------------------------------


@transaction.atomic
def membership_role_change(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """Owners change roles; the last owner cannot be demoted."""
    _require_owner(actor)
    if role not in Role.values:
        raise ValidationError(_("Unknown role."))
    _lock(membership.organization)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(membership.organization) <= 1:
        raise ValidationError(_("An organization needs an owner: make someone else owner first."))
    old_role, membership.role = membership.role, role
    membership.save(update_fields=["role"])
    audit_record(
        action=AuditAction.ORG_ROLE_CHANGE,
        actor=actor.user,
        target=membership.organization,
        subject=membership.user,
        org_id=membership.organization_id,
        metadata={"member": membership.user.email, "old_role": old_role, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> int:
    """Owners and admins remove members (admins: not owners); the keys the member created in the
    organization are revoked. Returns how many keys were revoked."""
    _require_manager(actor)
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise OrganizationPermissionDenied(_("Only owners can remove an owner."))
    return _membership_end(membership, actor=actor.user)


@transaction.atomic
def membership_leave(*, membership: Membership) -> int:
    """Leave the organization (not as its last owner); your keys in it are revoked."""
    return _membership_end(membership, actor=membership.user)


def _membership_end(membership: Membership, *, actor: User) -> int:
    organization = membership.organization
    _lock(organization)
    if membership.role == Role.OWNER and _owner_count(organization) <= 1:
        raise ValidationError(_("The last owner cannot leave or be removed: make someone else owner first."))
    revoked = _revoke_keys(ApiKey.objects.filter(organization=organization, user_id=membership.user_id), actor=actor)
    audit_record(
        action=AuditAction.ORG_MEMBER_REMOVE,
        actor=actor,
        target=organization,
        subject=membership.user,
        org_id=organization.pk,
        metadata={"member": membership.user.email, "role": membership.role, "keys_revoked": revoked},
    )
    membership.delete()
    return revoked


# --- keys -------------------------------------------------------------------------------------


def org_api_key_create(
    *,
    membership: Membership,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: Iterable[str] = (),
    allowed_ips: Iterable[str] = (),
    monthly_token_budget: int | None = None,
) -> tuple[ApiKey, str]:
    """Any member creates keys of the organization; they are attributed to that member."""
    return services.api_key_create(
        user=membership.user,
        organization=membership.organization,
        name=name,
        expires_at=expires_at,
        allowed_models=allowed_models,
        allowed_ips=allowed_ips,
        monthly_token_budget=monthly_token_budget,
        actor=membership.user,
    )


def org_api_key_revoke(*, membership: Membership, api_key: ApiKey) -> ApiKey:
    """Owners and admins revoke any key of the organization; a member revokes their own."""
    if api_key.organization_id != membership.organization_id:
        raise OrganizationPermissionDenied(_("This key belongs to another organization."))
    if not membership.manages and api_key.user_id != membership.user_id:
        raise OrganizationPermissionDenied(_("Only owners and admins can revoke other members' keys."))
    return services.api_key_revoke(api_key=api_key, actor=membership.user)


# --- a user's own alert settings ----------------------------------------------------------------


def user_alert_settings_update(*, user: User, alert_webhook_url: str) -> User:
    """Where budget alerts of the user's own budgets (and personal keys) are POSTed, signed."""
    user.alert_webhook_url = alert_webhook_url
    if not user.alert_webhook_secret:
        user.alert_webhook_secret = new_webhook_secret()
    user.save(update_fields=["alert_webhook_url", "alert_webhook_secret"])
    return user
