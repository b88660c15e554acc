"""JWTs that can be revoked: refresh tokens rotate and are blacklisted (simplejwt's token_blacklist
app); every token carries the user's auth_epoch, so raising it (log out everywhere, a password
change) also ends the access tokens already issued."""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

EPOCH_CLAIM = "epoch"


class EpochTokenObtainPairSerializer(TokenObtainPairSerializer):
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
