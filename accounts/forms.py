from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import normalise_networks


class SignupForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password1 = forms.CharField(
        label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists() or User.objects.filter(username__iexact=email).exists():
            raise ValidationError(_("An account with this e-mail already exists."))
        return email

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        elif password1 and cleaned.get("email"):
            try:
                password_validation.validate_password(
                    password1, User(username=cleaned["email"], email=cleaned["email"])
                )
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.CharField(
        label=_("E-mail"), widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    expires_at = forms.DateTimeField(
        required=False,
        label=_("Expires (optional, UTC)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    allowed_models = forms.CharField(
        required=False, label=_("Allowed models (optional, comma-separated)"), max_length=1000
    )
    allowed_ips = forms.CharField(
        required=False, label=_("Allowed IPs / CIDR ranges (optional, comma-separated)"), max_length=2000
    )
    monthly_token_budget = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=10**15,
        label=_("Monthly token budget (optional)"),
        help_text=_("Tokens this key may use per calendar month (UTC)."),
    )

    def clean_allowed_models(self) -> list[str]:
        return _split(self.cleaned_data["allowed_models"])

    def clean_allowed_ips(self) -> list[str]:
        return normalise_networks(_split(self.cleaned_data["allowed_ips"]))


class ApiKeyRenameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from your authenticator app (or a recovery code)"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
    )
