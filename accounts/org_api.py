"""The portal's JSON API for organizations (JWT or session): the organization, its members,
invitations and keys. To anyone who is not a member an organization answers 404; a member whose
role does not allow an action gets 403 (see accounts.org_services for the rules)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import org_selectors, org_services, selectors
from accounts.api import _created
from accounts.exceptions import ApiKeyLimitReached
from accounts.models import ApiKey, Invitation, Membership
from accounts.org_serializers import (
    InvitationAcceptSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    MembershipSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OrganizationUpdateSerializer,
    OrgApiKeySerializer,
    RoleSerializer,
)
from accounts.serializers import ApiKeyCreatedSerializer, ApiKeyCreateSerializer

TAGS = ["organizations"]


def _membership(request, org_id: int) -> Membership:
    try:
        return org_selectors.membership_for(user=request.user, organization_id=org_id)
    except Membership.DoesNotExist as exc:
        raise NotFound(_("No such organization.")) from exc


def _invalid(exc: DjangoValidationError) -> DrfValidationError:
    return DrfValidationError({"detail": exc.messages})


def _organization_data(membership: Membership) -> dict:
    organization = membership.organization
    manages = membership.manages
    return OrganizationSerializer(
        {
            "id": organization.pk,
            "name": organization.name,
            "role": membership.role,
            "plan": selectors.plan_for_organization(organization=organization),
            "monthly_token_budget": organization.monthly_token_budget,
            "alert_webhook_url": organization.alert_webhook_url if manages else "",
            "alert_webhook_secret": organization.alert_webhook_secret if manages else "",
            "created_at": organization.created_at,
        }
    ).data


class OrganizationListView(APIView):
    @extend_schema(responses=OrganizationSerializer(many=True), summary="Your organizations", tags=TAGS)
    def get(self, request):
        return Response([_organization_data(m) for m in org_selectors.memberships_for_user(user=request.user)])

    @extend_schema(
        request=OrganizationCreateSerializer,
        responses={201: OrganizationSerializer},
        summary="Create an organization (you are its owner)",
        tags=TAGS,
    )
    def post(self, request):
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = org_services.organization_create(user=request.user, name=serializer.validated_data["name"])
        membership = org_selectors.membership_for(user=request.user, organization_id=organization.pk)
        return Response(_organization_data(membership), status=status.HTTP_201_CREATED)


class OrganizationDetailView(APIView):
    @extend_schema(responses=OrganizationSerializer, summary="An organization you are a member of", tags=TAGS)
    def get(self, request, org_id: int):
        return Response(_organization_data(_membership(request, org_id)))

    @extend_schema(
        request=OrganizationUpdateSerializer,
        responses=OrganizationSerializer,
        summary="Change the name, monthly token budget or alert webhook (owners and admins)",
        tags=TAGS,
    )
    def patch(self, request, org_id: int):
        membership = _membership(request, org_id)
        serializer = OrganizationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = membership.organization
        values = {
            "name": organization.name,
            "monthly_token_budget": organization.monthly_token_budget,
            "alert_webhook_url": organization.alert_webhook_url,
            **serializer.validated_data,
        }
        org_services.organization_update(membership=membership, **values)
        return Response(_organization_data(membership))

    @extend_schema(
        request=None,
        responses={204: None},
        summary="Delete the organization, its keys, invitations and usage (owners)",
        tags=TAGS,
    )
    def delete(self, request, org_id: int):
        org_services.organization_delete(membership=_membership(request, org_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListView(APIView):
    @extend_schema(responses=MembershipSerializer(many=True), summary="The organization's members", tags=TAGS)
    def get(self, request, org_id: int):
        membership = _membership(request, org_id)
        return Response(
            MembershipSerializer(org_selectors.members_of(organization=membership.organization), many=True).data
        )


class MemberDetailView(APIView):
    def _target(self, membership: Membership, membership_id: int) -> Membership:
        try:
            return org_selectors.member_of(organization=membership.organization, membership_id=membership_id)
        except Membership.DoesNotExist as exc:
            raise NotFound(_("No such member.")) from exc

    @extend_schema(
        request=RoleSerializer, responses=MembershipSerializer, summary="Change a member's role (owners)", tags=TAGS
    )
    def patch(self, request, org_id: int, membership_id: int):
        membership = _membership(request, org_id)
        target = self._target(membership, membership_id)
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            org_services.membership_role_change(
                actor=membership, membership=target, role=serializer.validated_data["role"]
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(MembershipSerializer(target).data)

    @extend_schema(
        request=None,
        responses={204: None, 400: OpenApiResponse(description="The last owner cannot leave or be removed")},
        summary="Remove a member (owners and admins; admins not owners); their keys here are revoked",
        tags=TAGS,
    )
    def delete(self, request, org_id: int, membership_id: int):
        membership = _membership(request, org_id)
        target = self._target(membership, membership_id)
        try:
            if target.pk == membership.pk:
                org_services.membership_leave(membership=membership)
            else:
                org_services.membership_remove(actor=membership, membership=target)
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaveView(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Leave the organization (not as its last owner); your keys here are revoked",
        tags=TAGS,
    )
    def post(self, request, org_id: int):
        try:
            org_services.membership_leave(membership=_membership(request, org_id))
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(APIView):
    @extend_schema(
        responses=InvitationSerializer(many=True),
        summary="Pending invitations (owners and admins; empty for members)",
        tags=TAGS,
    )
    def get(self, request, org_id: int):
        membership = _membership(request, org_id)
        return Response(InvitationSerializer(org_selectors.invitations_pending(membership=membership), many=True).data)

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
        summary="Invite an e-mail address (owners and admins); a signed link valid 7 days is e-mailed",
        tags=TAGS,
    )
    def post(self, request, org_id: int):
        membership = _membership(request, org_id)
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            invitation = org_services.invitation_create(
                membership=membership,
                link_for=lambda token: request.build_absolute_uri(reverse("invitation-accept", args=[token])),
                **serializer.validated_data,
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailView(APIView):
    @extend_schema(request=None, responses={204: None}, summary="Withdraw an invitation", tags=TAGS)
    def delete(self, request, org_id: int, invitation_id: int):
        membership = _membership(request, org_id)
        try:
            invitation = org_selectors.invitation_of(membership=membership, invitation_id=invitation_id)
        except Invitation.DoesNotExist as exc:
            raise NotFound(_("No such invitation.")) from exc
        org_services.invitation_revoke(membership=membership, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptView(APIView):
    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={201: OrganizationSerializer},
        summary="Accept an invitation (signed in with the account of the invited address)",
        tags=TAGS,
    )
    def post(self, request):
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            membership = org_services.invitation_accept(token=serializer.validated_data["token"], user=request.user)
        except org_services.InvitationInvalid as exc:
            raise DrfValidationError({"token": [str(exc)]}) from exc
        return Response(_organization_data(membership), status=status.HTTP_201_CREATED)


class OrgKeyListView(APIView):
    @extend_schema(
        responses=OrgApiKeySerializer(many=True),
        summary="The organization's keys (all for owners and admins; members: their own)",
        tags=TAGS,
    )
    def get(self, request, org_id: int):
        membership = _membership(request, org_id)
        return Response(OrgApiKeySerializer(org_selectors.org_keys_visible(membership=membership), many=True).data)

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
        summary="Create a key of the organization, attributed to you (any member)",
        tags=TAGS,
    )
    def post(self, request, org_id: int):
        membership = _membership(request, org_id)
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            api_key, raw_key = org_services.org_api_key_create(membership=membership, **serializer.validated_data)
        except ApiKeyLimitReached as exc:
            raise DrfValidationError({"detail": str(exc)}, code=exc.code) from exc
        except DjangoValidationError as exc:
            raise _invalid(exc) from exc
        return _created(api_key, raw_key)


class OrgKeyDetailView(APIView):
    @extend_schema(
        request=None,
        responses={200: OrgApiKeySerializer},
        summary="Revoke a key of the organization (owners and admins: any; members: their own)",
        tags=TAGS,
    )
    def delete(self, request, org_id: int, key_id: int):
        membership = _membership(request, org_id)
        try:
            api_key = org_selectors.org_key_for(membership=membership, key_id=key_id)
        except ApiKey.DoesNotExist as exc:
            raise NotFound(_("No such key.")) from exc
        return Response(
            OrgApiKeySerializer(org_services.org_api_key_revoke(membership=membership, api_key=api_key)).data
        )


urls: list[URLPattern] = [
    path("orgs/", OrganizationListView.as_view(), name="api-orgs"),
    path("orgs/<int:org_id>/", OrganizationDetailView.as_view(), name="api-org"),
    path("orgs/<int:org_id>/members/", MemberListView.as_view(), name="api-org-members"),
    path("orgs/<int:org_id>/members/<int:membership_id>/", MemberDetailView.as_view(), name="api-org-member"),
    path("orgs/<int:org_id>/leave/", LeaveView.as_view(), name="api-org-leave"),
    path("orgs/<int:org_id>/invitations/", InvitationListView.as_view(), name="api-org-invitations"),
    path(
        "orgs/<int:org_id>/invitations/<int:invitation_id>/",
        InvitationDetailView.as_view(),
        name="api-org-invitation",
    ),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="api-invitation-accept"),
    path("orgs/<int:org_id>/keys/", OrgKeyListView.as_view(), name="api-org-keys"),
    path("orgs/<int:org_id>/keys/<int:key_id>/", OrgKeyDetailView.as_view(), name="api-org-key"),
]
