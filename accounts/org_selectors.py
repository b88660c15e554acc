"""Reads for organizations. Everything goes through the caller's membership: to anyone who is not
a member an organization and all it holds do not exist (DoesNotExist: answer 404)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, Invitation, Membership, Organization, User

MAX_ID = 2**63 - 1  # ids in URLs beyond any database integer: nothing there (not an overflow error)


def _checked(model, object_id: int) -> int:
    if not 0 < object_id <= MAX_ID:
        raise model.DoesNotExist
    return object_id


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    """The user's memberships, with their organizations."""
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name", "id")


def org_ids_of(*, user: User) -> list[int]:
    """The organizations a user belongs to (any role): their audit events are the user's to see."""
    return list(Membership.objects.filter(user=user).values_list("organization_id", flat=True))


def membership_for(*, user: User, organization_id: int) -> Membership:
    """The user's membership of the organization; Membership.DoesNotExist when not a member."""
    return Membership.objects.select_related("organization", "user").get(
        user=user, organization_id=_checked(Membership, organization_id)
    )


def members_of(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=organization).select_related("user").order_by("created_at", "id")


def member_of(*, organization: Organization, membership_id: int) -> Membership:
    """A membership of this organization; DoesNotExist for any other organization's."""
    return Membership.objects.select_related("user", "organization").get(
        organization=organization, pk=_checked(Membership, membership_id)
    )


def invitations_pending(*, membership: Membership) -> QuerySet[Invitation]:
    """Pending invitations, for owners and admins only (an empty list for members)."""
    if not membership.manages:
        return Invitation.objects.none()
    return Invitation.objects.filter(organization=membership.organization, accepted_at__isnull=True).select_related(
        "invited_by"
    )


def invitation_of(*, membership: Membership, invitation_id: int) -> Invitation:
    """A pending invitation of the organization (owners and admins); DoesNotExist otherwise."""
    return invitations_pending(membership=membership).get(pk=_checked(Invitation, invitation_id))


def org_keys_visible(*, membership: Membership) -> QuerySet[ApiKey]:
    """The organization's keys the member may see: all for owners and admins, their own for members."""
    keys = ApiKey.objects.filter(organization=membership.organization).select_related("user")
    if not membership.manages:
        keys = keys.filter(user=membership.user)
    return keys.order_by("-created_at")


def org_key_for(*, membership: Membership, key_id: int) -> ApiKey:
    """A key of the organization the member may see; ApiKey.DoesNotExist otherwise."""
    return org_keys_visible(membership=membership).get(pk=_checked(ApiKey, key_id))
