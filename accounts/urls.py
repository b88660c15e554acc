from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter
from rest_framework_simplejwt.views import TokenRefreshView

from accounts import api, org_api, org_views, views

router = SimpleRouter()
router.register("keys", api.ApiKeyViewSet, basename="api-keys")

page_urls: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("verify/<str:token>/", views.verify_email, name="verify-email"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/2fa/", views.login_two_factor, name="login-2fa"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password_change_done",
    ),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path("password/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path("console/", views.console, name="console"),
    path("logout/everywhere/", views.logout_everywhere, name="logout-everywhere"),
]

# Under /console/, beside the usage pages (usage.urls.console_urls).
console_urls: list[URLPattern | URLResolver] = [
    path("keys/", views.keys, name="keys"),
    path("security/2fa/", views.two_factor_settings, name="two-factor"),
    path("security/2fa/qr.svg", views.two_factor_qr, name="two-factor-qr"),
    path("keys/<int:key_id>/rename/", views.key_rename, name="key-rename"),
    path("keys/<int:key_id>/revoke/", views.key_revoke, name="key-revoke"),
    path("keys/<int:key_id>/rotate/", views.key_rotate, name="key-rotate"),
    # Organizations (accounts.org_views): to anyone not a member, each of these answers 404.
    path("orgs/", org_views.organizations, name="orgs"),
    path("orgs/<int:org_id>/", org_views.org_detail, name="org-detail"),
    path("orgs/<int:org_id>/settings/", org_views.org_settings, name="org-settings"),
    path("orgs/<int:org_id>/invitations/", org_views.org_invite, name="org-invite"),
    path(
        "orgs/<int:org_id>/invitations/<int:invitation_id>/revoke/",
        org_views.org_invitation_revoke,
        name="org-invitation-revoke",
    ),
    path("orgs/<int:org_id>/members/<int:membership_id>/role/", org_views.org_member_role, name="org-member-role"),
    path(
        "orgs/<int:org_id>/members/<int:membership_id>/remove/", org_views.org_member_remove, name="org-member-remove"
    ),
    path("orgs/<int:org_id>/leave/", org_views.org_leave, name="org-leave"),
    path("orgs/<int:org_id>/delete/", org_views.org_delete, name="org-delete"),
    path("orgs/<int:org_id>/keys/", org_views.org_key_create, name="org-key-create"),
    path("orgs/<int:org_id>/keys/<int:key_id>/revoke/", org_views.org_key_revoke, name="org-key-revoke"),
    path("invitations/<str:token>/", org_views.invitation_accept, name="invitation-accept"),
]

api_urls: list[URLPattern | URLResolver] = [
    path("token/", api.ThrottledTokenObtainPairView.as_view(), name="token-obtain"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("logout/everywhere/", api.LogoutEverywhereView.as_view(), name="api-logout-everywhere"),
    *org_api.urls,
    path("", include(router.urls)),
]
