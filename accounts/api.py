"""The portal's JSON API (JWT or session auth): the caller's profile and API keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotFound, Throttled
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from accounts import selectors, services, throttle
from accounts.exceptions import ApiKeyLimitReached
from accounts.models import ApiKey
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyRenameSerializer,
    ApiKeySerializer,
    MeSerializer,
)
from accounts.throttle import LOGIN_LIMITS


class ThrottledTokenObtainPairView(TokenObtainPairView):
    """simplejwt's token endpoint with the login page's throttle: a password guessed here is a
    password guessed, so it counts against the same per-IP and per-account limits."""

    def post(self, request, *args, **kwargs):
        if throttle.blocked(request, **LOGIN_LIMITS):
            raise Throttled(detail="Too many failed attempts. Please wait a minute and try again.")
        try:
            return super().post(request, *args, **kwargs)
        except (AuthenticationFailed, DrfValidationError):
            throttle.count(request, **LOGIN_LIMITS)  # only failures count
            raise


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user and their plan")
    def get(self, request):
        user = request.user
        plan = selectors.plan_for_user(user=user)
        return Response(MeSerializer({"id": user.pk, "email": user.email, "plan": plan}).data)


class LogoutEverywhereView(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Sign out everywhere: end every session, access token and refresh token of the caller",
    )
    def post(self, request):
        services.user_log_out_everywhere(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _created(api_key: ApiKey, raw_key: str) -> Response:
    data = ApiKeyCreatedSerializer(api_key).data
    data["key"] = raw_key
    return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Create, list, rename, revoke (DELETE) and rotate the caller's API keys."""

    serializer_class = ApiKeySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no real user
            return ApiKey.objects.none()
        return selectors.api_keys_for_user(user=self.request.user)

    def get_object(self) -> ApiKey:
        try:
            return selectors.api_key_for_user(user=self.request.user, key_id=int(self.kwargs["pk"]))  # type: ignore[arg-type]
        except (ApiKey.DoesNotExist, ValueError) as exc:
            raise NotFound("No such key.") from exc

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request):
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            api_key, raw_key = services.api_key_create(
                user=request.user, actor=request.user, **serializer.validated_data
            )
        except ApiKeyLimitReached as exc:
            raise DrfValidationError({"detail": str(exc)}, code=exc.code) from exc
        except DjangoValidationError as exc:
            raise DrfValidationError({"detail": exc.messages}) from exc
        return _created(api_key, raw_key)

    @extend_schema(request=ApiKeyRenameSerializer, responses=ApiKeySerializer, summary="Rename a key")
    def partial_update(self, request, pk=None):
        serializer = ApiKeyRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key = services.api_key_rename(
            api_key=self.get_object(), name=serializer.validated_data["name"], actor=request.user
        )
        return Response(ApiKeySerializer(api_key).data)

    @extend_schema(request=None, responses={200: ApiKeySerializer}, summary="Revoke a key (answers the revoked key)")
    def destroy(self, request, pk=None):
        api_key = services.api_key_revoke(api_key=self.get_object(), actor=request.user)
        return Response(ApiKeySerializer(api_key).data)

    @extend_schema(request=None, responses={201: ApiKeyCreatedSerializer}, summary="Rotate a key")
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        try:
            api_key, raw_key = services.api_key_rotate(api_key=self.get_object(), actor=request.user)
        except DjangoValidationError as exc:
            raise DrfValidationError({"detail": exc.messages}) from exc
        return _created(api_key, raw_key)
