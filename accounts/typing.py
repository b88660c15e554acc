"""Types for views: after login_required, `request.user` is one of our users, not AnonymousUser."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import User


class AuthenticatedRequest(HttpRequest):
    user: User
