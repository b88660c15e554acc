"""JWTs that can be revoked: refresh tokens rotate and are blacklisted (simplejwt's token_blacklist
app); every token carries the user's auth_epoch, so raising it (log out everywhere, a password
change) also ends the access tokens already issued."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

EPOCH_CLAIM = "epoch"


class EpochTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Tokens for a user and password, plus `otp` (a TOTP or recovery code) for accounts with
    two-factor authentication: the API is no way around the second factor."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["otp"] = serializers.CharField(required=False, write_only=True, max_length=32)

    def validate(self, attrs):
        data = super().validate(attrs)  # raises AuthenticationFailed for a wrong password
        from accounts import two_factor
        from audit.services import audit_login_failure, audit_login_success

        request = self.context.get("request")
        if two_factor.has_two_factor(user=self.user):
            code = attrs.get("otp") or ""
            if not code or not two_factor.two_factor_verify(user=self.user, code=code):
                if code:  # a missing code is the first step of a two-factor client, not a failure
                    audit_login_failure(
                        username=self.user.get_username(), user=self.user, request=request, reason="second_factor"
                    )
                raise AuthenticationFailed(
                    "This account uses two-factor authentication: send a valid `otp` code.", code="otp_required"
                )
        audit_login_success(user=self.user, request=request, method="jwt")
        return data

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token[EPOCH_CLAIM] = user.auth_epoch  # copied into the access tokens made from it
        return token


class RevocableJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication that also refuses tokens issued before the user's last
    "log out everywhere" or password change."""

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get(EPOCH_CLAIM, 0) != getattr(user, "auth_epoch", 0):
            raise AuthenticationFailed("This token has been revoked.", code="token_revoked")
        return user
