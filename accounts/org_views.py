"""Organization pages in the console: list and create, one organization (members, invitations,
keys, settings) and accepting an invitation. The organization's usage and budget are on the usage
dashboard (/console/usage/?org=<id>).

To anyone who is not a member an organization does not exist (404); a member whose role does not
allow an action gets 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import org_selectors, org_services, selectors
from accounts.exceptions import ApiKeyLimitReached
from accounts.models import ApiKey, Invitation, Membership
from accounts.org_forms import (
    InvitationForm,
    OrganizationCreateForm,
    OrganizationSettingsForm,
    OrgApiKeyCreateForm,
    RoleForm,
)
from accounts.typing import AuthenticatedRequest

OrgView = Callable[..., HttpResponse]


def org_page(view: OrgView) -> OrgView:
    """Logged in, and a member of the organization in the URL (else 404); passes the membership."""

    @login_required
    @wraps(view)
    def wrapper(request: AuthenticatedRequest, org_id: int, *args, **kwargs) -> HttpResponse:
        try:
            membership = org_selectors.membership_for(user=request.user, organization_id=org_id)
        except Membership.DoesNotExist as exc:
            raise Http404(_("No such organization.")) from exc
        return view(request, membership, *args, **kwargs)

    return wrapper


def _back(membership: Membership) -> HttpResponse:
    return redirect("org-detail", membership.organization_id)


@login_required
def organizations(request: AuthenticatedRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = org_services.organization_create(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, _("Organization created. Invite your team."))
        return redirect("org-detail", organization.pk)
    context = {"form": form, "memberships": org_selectors.memberships_for_user(user=request.user)}
    return render(request, "accounts/orgs.html", context, status=400 if form.errors else 200)


def _detail(
    request: AuthenticatedRequest,
    membership: Membership,
    *,
    key_form: OrgApiKeyCreateForm | None = None,
    invite_form: InvitationForm | None = None,
    settings_form: OrganizationSettingsForm | None = None,
    new_key: str | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = membership.organization
    context = {
        "membership": membership,
        "organization": organization,
        "plan": selectors.plan_for_organization(organization=organization),
        "members": org_selectors.members_of(organization=organization),
        "invitations": org_selectors.invitations_pending(membership=membership),
        "keys": org_selectors.org_keys_visible(membership=membership),
        "key_form": key_form or OrgApiKeyCreateForm(),
        "invite_form": invite_form or InvitationForm(),
        "settings_form": settings_form
        or OrganizationSettingsForm(
            initial={
                "name": organization.name,
                "monthly_token_budget": organization.monthly_token_budget,
                "alert_webhook_url": organization.alert_webhook_url,
            }
        ),
        "roles": Membership.Role.choices,
        "new_key": new_key,
        "max_keys": settings.MAX_ACTIVE_KEYS_PER_USER,
    }
    response = render(request, "accounts/org_detail.html", context, status=status)
    if new_key or membership.manages:
        response["Cache-Control"] = "no-store"  # a key shown once, or the webhook secret
    return response


@org_page
def org_detail(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    return _detail(request, membership)


@org_page
@require_POST
def org_settings(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    form = OrganizationSettingsForm(request.POST)
    if not form.is_valid():
        return _detail(request, membership, settings_form=form, status=400)
    org_services.organization_update(membership=membership, **form.cleaned_data)
    messages.success(request, _("Settings saved."))
    return _back(membership)


@org_page
@require_POST
def org_invite(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _detail(request, membership, invite_form=form, status=400)
    try:
        invitation = org_services.invitation_create(
            membership=membership,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            link_for=lambda token: request.build_absolute_uri(reverse("invitation-accept", args=[token])),
        )
    except ValidationError as exc:
        form.add_error("email", exc)
        return _detail(request, membership, invite_form=form, status=400)
    messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
    return _back(membership)


@org_page
@require_POST
def org_invitation_revoke(request: AuthenticatedRequest, membership: Membership, invitation_id: int) -> HttpResponse:
    try:
        invitation = org_selectors.invitation_of(membership=membership, invitation_id=invitation_id)
    except Invitation.DoesNotExist as exc:
        raise Http404(_("No such invitation.")) from exc
    org_services.invitation_revoke(membership=membership, invitation=invitation)
    messages.success(request, _("Invitation withdrawn."))
    return _back(membership)


def _member(membership: Membership, membership_id: int) -> Membership:
    try:
        return org_selectors.member_of(organization=membership.organization, membership_id=membership_id)
    except Membership.DoesNotExist as exc:
        raise Http404(_("No such member.")) from exc


@org_page
@require_POST
def org_member_role(request: AuthenticatedRequest, membership: Membership, membership_id: int) -> HttpResponse:
    target = _member(membership, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return _back(membership)
    try:
        org_services.membership_role_change(actor=membership, membership=target, role=form.cleaned_data["role"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Role changed."))
    return _back(membership)


@org_page
@require_POST
def org_member_remove(request: AuthenticatedRequest, membership: Membership, membership_id: int) -> HttpResponse:
    target = _member(membership, membership_id)
    if target.pk == membership.pk:
        return org_leave(request, membership.organization_id)
    try:
        revoked = org_services.membership_remove(actor=membership, membership=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("%(email)s removed; %(count)s of their keys revoked.") % {"email": target.user.email, "count": revoked},
        )
    return _back(membership)


@org_page
@require_POST
def org_leave(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    try:
        org_services.membership_leave(membership=membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _back(membership)
    messages.success(request, _("You left %(name)s.") % {"name": membership.organization.name})
    return redirect("orgs")


@org_page
@require_POST
def org_delete(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    name = membership.organization.name
    org_services.organization_delete(membership=membership)
    messages.success(request, _("Organization %(name)s deleted; its keys no longer work.") % {"name": name})
    return redirect("orgs")


@org_page
@require_POST
def org_key_create(request: AuthenticatedRequest, membership: Membership) -> HttpResponse:
    form = OrgApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _detail(request, membership, key_form=form, status=400)
    try:
        _key, raw_key = org_services.org_api_key_create(membership=membership, **form.cleaned_data)
    except (ApiKeyLimitReached, ValidationError) as exc:
        form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
        return _detail(request, membership, key_form=form, status=400)
    # Rendered directly (not redirected): the raw key exists only in this response.
    return _detail(request, membership, new_key=raw_key)


@org_page
@require_POST
def org_key_revoke(request: AuthenticatedRequest, membership: Membership, key_id: int) -> HttpResponse:
    try:
        api_key = org_selectors.org_key_for(membership=membership, key_id=key_id)
    except ApiKey.DoesNotExist as exc:
        raise Http404(_("No such key.")) from exc
    org_services.org_api_key_revoke(membership=membership, api_key=api_key)
    messages.success(request, _("Key “%(name)s” revoked.") % {"name": api_key.name})
    return _back(membership)


@login_required
def invitation_accept(request: AuthenticatedRequest, token: str) -> HttpResponse:
    """Shows the invitation (GET) and accepts it (POST), for the account of the invited address."""
    try:
        invitation = org_services.invitation_from_token(token=token, user=request.user)
        if request.method == "POST":
            membership = org_services.invitation_accept(token=token, user=request.user)
            messages.success(request, _("Welcome to %(name)s.") % {"name": membership.organization.name})
            return redirect("org-detail", membership.organization_id)
    except org_services.InvitationInvalid as exc:
        return render(request, "accounts/invitation.html", {"error": str(exc)}, status=400)
    return render(request, "accounts/invitation.html", {"invitation": invitation})
