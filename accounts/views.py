"""Account and console pages. Thin: forms validate, services write, selectors read."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import selectors, services, throttle, two_factor
from accounts.exceptions import ApiKeyLimitReached
from accounts.forms import (
    ApiKeyCreateForm,
    ApiKeyRenameForm,
    EmailAuthenticationForm,
    SignupForm,
    TwoFactorCodeForm,
)
from accounts.models import ApiKey, User
from accounts.typing import AuthenticatedRequest
from audit.models import AuditAction
from audit.services import audit_login_failure, audit_record

VERIFY_SALT = "accounts.verify-email"
THROTTLED_MESSAGE = gettext_lazy("Too many attempts. Please wait a minute and try again.")


def home(request: AuthenticatedRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console")
    return render(request, "home.html")


def ratelimited(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "accounts/throttled.html", {"message": THROTTLED_MESSAGE}, status=429)


# --- signup, verification, login -----------------------------------------------------------


def _send_verification(request: HttpRequest, user: User) -> None:
    token = signing.dumps(user.pk, salt=VERIFY_SALT)
    link = request.build_absolute_uri(reverse("verify-email", args=[token]))
    # In the language of the signup page (the switcher's choice or the browser's Accept-Language).
    body = _("Welcome! Confirm your address to activate your account:\n\n%(link)s\n\nThe link is valid for 3 days.")
    send_mail(_("Confirm your e-mail for LLM OS Portal"), body % {"link": link}, None, [user.email])


def signup(request: AuthenticatedRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if throttle.too_many(request, group="signup", by_ip="SIGNUP_RATE_PER_IP"):
            form.add_error(None, THROTTLED_MESSAGE)
            status = 429
        elif settings.ACCOUNT_EMAIL_VERIFICATION and not services.email_can_be_sent():
            form.add_error(None, services.EMAIL_NOT_CONFIGURED_MESSAGE)
            status = 503
        elif form.is_valid():
            user = services.user_signup(email=form.cleaned_data["email"], password=form.cleaned_data["password1"])
            if settings.ACCOUNT_EMAIL_VERIFICATION:
                _send_verification(request, user)
                return render(request, "accounts/verify_sent.html", {"email": user.email})
            request.audit_login_method = "signup"  # read by the audit log
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Create an API key to start calling models."))
            return redirect("console")
    return render(request, "accounts/signup.html", {"form": form}, status=status)


def verify_email(request: HttpRequest, token: str) -> HttpResponse:
    max_age = settings.ACCOUNT_VERIFICATION_MAX_AGE
    try:
        user_id = signing.loads(token, salt=VERIFY_SALT, max_age=max_age)
        user = User.objects.get(pk=user_id)
    except (signing.BadSignature, User.DoesNotExist):
        return render(request, "accounts/verify_failed.html", status=400)
    if services.user_verify_email(user=user):
        messages.success(request, _("Your e-mail is confirmed. You can log in now."))
    elif user.is_active:
        messages.info(request, _("Your e-mail was already confirmed. You can log in."))
    else:  # deactivated by an operator after confirming: the link does not undo that
        return render(request, "accounts/verify_failed.html", status=400)
    return redirect("login")


class LoginView(auth_views.LoginView):
    """Django's login, throttled per IP and per account on failed attempts."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        if throttle.blocked(request, **throttle.LOGIN_LIMITS):
            form.add_error(None, THROTTLED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        if form.is_valid():
            return self.form_valid(form)
        throttle.count(request, **throttle.LOGIN_LIMITS)  # only failed attempts count
        return self.form_invalid(form)

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor.has_two_factor(user=user):
            return super().form_valid(form)
        # The password was right; the session is not signed in until the second factor is.
        self.request.session[PENDING_2FA] = {
            "user_id": user.pk,
            "backend": user.backend,
            "at": time.time(),
            "next": self.get_success_url(),
        }
        return redirect("login-2fa")


PENDING_2FA = "accounts.pending-2fa"
PENDING_2FA_SECONDS = 300


def login_two_factor(request: HttpRequest) -> HttpResponse:
    """The second step of a login for accounts with two-factor authentication."""
    pending = request.session.get(PENDING_2FA)
    if not pending or time.time() - pending.get("at", 0) > PENDING_2FA_SECONDS:
        request.session.pop(PENDING_2FA, None)
        return redirect("login")
    form = TwoFactorCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        user = User.objects.filter(pk=pending["user_id"], is_active=True).first()
        if throttle.blocked(request, **throttle.LOGIN_LIMITS):
            form.add_error(None, THROTTLED_MESSAGE)
            status = 429
        elif (
            user is not None
            and form.is_valid()
            and two_factor.two_factor_verify(user=user, code=form.cleaned_data["code"])
        ):
            del request.session[PENDING_2FA]
            request.audit_login_method = "two_factor"  # type: ignore[attr-defined]  # read by the audit log
            login(request, user, backend=pending["backend"])
            return redirect(pending.get("next") or settings.LOGIN_REDIRECT_URL)
        else:
            throttle.count(request, **throttle.LOGIN_LIMITS)
            if user is not None:
                audit_login_failure(username=user.get_username(), user=user, request=request, reason="second_factor")
            if not form.errors:
                form.add_error("code", _("That code is not valid."))
            status = 400
    return render(request, "accounts/login_2fa.html", {"form": form}, status=status)


@login_required
def two_factor_settings(request: AuthenticatedRequest) -> HttpResponse:
    """Turn two-factor authentication on (QR + first code, then recovery codes) or off."""
    user = request.user
    device = two_factor.confirmed_device(user=user)
    form = TwoFactorCodeForm(request.POST or None)
    recovery_codes = None
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        action = request.POST.get("action")
        if action == "confirm" and device is None:
            recovery_codes = two_factor.totp_enrol_confirm(user=user, code=code)
            if recovery_codes is None:
                form.add_error("code", _("That code is not valid. Check the time on your device and try again."))
                status = 400
            else:
                audit_record(action=AuditAction.TWO_FACTOR_ENABLE, actor=user, target=user, request=request)
                device = two_factor.confirmed_device(user=user)
                form = TwoFactorCodeForm()
        elif action == "disable" and device is not None:
            if two_factor.two_factor_required(user=user):
                form.add_error(None, _("Staff accounts must keep two-factor authentication on."))
                status = 400
            elif two_factor.two_factor_verify(user=user, code=code):
                two_factor.two_factor_disable(user=user)
                audit_record(action=AuditAction.TWO_FACTOR_DISABLE, actor=user, target=user, request=request)
                messages.success(request, _("Two-factor authentication is off."))
                return redirect("two-factor")
            else:
                form.add_error("code", _("That code is not valid."))
                status = 400
    elif request.method == "POST":
        status = 400
    if device is None:
        device = two_factor.totp_enrol_start(user=user) if request.method == "GET" else _pending_device(user)
    context = {
        "device": device,
        "form": form,
        "recovery_codes": recovery_codes,
        "required": two_factor.two_factor_required(user=user) and not device.is_confirmed,
    }
    response = render(request, "accounts/two_factor.html", context, status=status)
    response["Cache-Control"] = "no-store"  # secrets and recovery codes
    return response


def _pending_device(user: User):
    from accounts.models import TotpDevice

    return TotpDevice.objects.filter(user=user).first() or two_factor.totp_enrol_start(user=user)


@login_required
def two_factor_qr(request: AuthenticatedRequest) -> HttpResponse:
    """The QR code of the caller's own unconfirmed secret, as an SVG image."""
    from accounts.models import TotpDevice

    device = TotpDevice.objects.filter(user=request.user, confirmed_at__isnull=True).first()
    if device is None:
        raise Http404("No two-factor set-up in progress.")
    response = HttpResponse(two_factor.qr_svg(device), content_type="image/svg+xml")
    response["Cache-Control"] = "no-store"
    return response


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin signs in through the portal's login page: the same failed-login throttle, and
    the second factor for accounts that have one. No password is checked here."""
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_record(action=AuditAction.PASSWORD_CHANGE, actor=form.user, target=form.user, request=self.request)
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        # The person proved they read the account's mail: they act, though not signed in.
        audit_record(action=AuditAction.PASSWORD_RESET, actor=form.user, target=form.user, request=self.request)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"

    def post(self, request, *args, **kwargs):
        if throttle.too_many(request, group="password-reset", by_ip="PASSWORD_RESET_RATE_PER_IP"):
            form = self.get_form()
            form.is_valid()
            form.add_error(None, THROTTLED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        if not services.email_can_be_sent():
            # Refused rather than printed to the server log, where the link would be anyone's.
            form = self.get_form()
            form.is_valid()
            form.add_error(None, services.EMAIL_NOT_CONFIGURED_MESSAGE)
            return self.render_to_response(self.get_context_data(form=form), status=503)
        return super().post(request, *args, **kwargs)


# --- console -------------------------------------------------------------------------------


@login_required
def console(request: AuthenticatedRequest) -> HttpResponse:
    keys = list(selectors.api_keys_for_user(user=request.user))
    context = {
        "plan": selectors.plan_for_user(user=request.user),
        "active_key_count": sum(1 for key in keys if key.is_active),
        "max_keys": settings.MAX_ACTIVE_KEYS_PER_USER,
    }
    return render(request, "accounts/console.html", context)


@login_required
@require_POST
def logout_everywhere(request: AuthenticatedRequest) -> HttpResponse:
    """Sign out of every browser and API client (sessions, JWTs), this one included."""
    services.user_log_out_everywhere(user=request.user)
    logout(request)
    messages.success(request, _("You are signed out everywhere. Log in again to continue."))
    return redirect("login")


def _own_key(request: AuthenticatedRequest, key_id: int) -> ApiKey:
    try:
        return selectors.api_key_for_user(user=request.user, key_id=key_id)
    except ApiKey.DoesNotExist as exc:
        raise Http404("No such key.") from exc


def _keys_page(request: AuthenticatedRequest, form: ApiKeyCreateForm, *, status: int = 200, new_key: str | None = None):
    context = {
        "form": form,
        "keys": selectors.api_keys_for_user(user=request.user),
        "max_keys": settings.MAX_ACTIVE_KEYS_PER_USER,
        "new_key": new_key,
    }
    response = render(request, "accounts/keys.html", context, status=status)
    if new_key:
        response["Cache-Control"] = "no-store"  # the page holds a secret shown once
    return response


@login_required
def keys(request: AuthenticatedRequest) -> HttpResponse:
    if request.method != "POST":
        return _keys_page(request, ApiKeyCreateForm())
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form, status=400)
    try:
        _, raw_key = services.api_key_create(user=request.user, actor=request.user, **form.cleaned_data)
    except (ApiKeyLimitReached, ValidationError) as exc:
        form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
        return _keys_page(request, form, status=400)
    # Rendered directly (not redirected): the raw key exists only in this response.
    return _keys_page(request, ApiKeyCreateForm(), new_key=raw_key)


@login_required
@require_POST
def key_rename(request: AuthenticatedRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    form = ApiKeyRenameForm(request.POST)
    if form.is_valid():
        services.api_key_rename(api_key=api_key, name=form.cleaned_data["name"], actor=request.user)
        messages.success(request, _("Key renamed."))
    else:
        messages.error(request, _("A key needs a name of at most 100 characters."))
    return redirect("keys")


@login_required
@require_POST
def key_revoke(request: AuthenticatedRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    services.api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, _("Key “%(name)s” revoked. Requests using it are now rejected.") % {"name": api_key.name})
    return redirect("keys")


@login_required
@require_POST
def key_rotate(request: AuthenticatedRequest, key_id: int) -> HttpResponse:
    api_key = _own_key(request, key_id)
    try:
        _, raw_key = services.api_key_rotate(api_key=api_key, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("keys")
    return _keys_page(request, ApiKeyCreateForm(), new_key=raw_key)
