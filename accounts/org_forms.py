from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.forms import ApiKeyCreateForm
from accounts.models import Membership


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    monthly_token_budget = forms.IntegerField(
        label=_("Monthly token budget (optional)"),
        required=False,
        min_value=1,
        max_value=10**15,
        help_text=_("For the whole organization, per calendar month (UTC). The plan's budget applies too."),
    )
    alert_webhook_url = forms.URLField(
        label=_("Alert webhook URL (optional)"),
        required=False,
        assume_scheme="https",
        help_text=_("Budget alerts are POSTed here as JSON, signed with the secret below."),
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


class AlertSettingsForm(forms.Form):
    alert_webhook_url = forms.URLField(
        label=_("Alert webhook URL (optional)"),
        required=False,
        assume_scheme="https",
        help_text=_("Alerts about your own budgets are POSTed here as JSON, signed with the secret below."),
    )


class OrgApiKeyCreateForm(ApiKeyCreateForm):
    """The personal key form: the same fields (it has the monthly budget too)."""
