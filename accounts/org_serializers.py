from __future__ import annotations

from rest_framework import serializers

from accounts.fields import StrictCharField
from accounts.models import Invitation, Membership
from accounts.serializers import ApiKeySerializer, PlanSerializer


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Membership.Role.choices, help_text="The caller's role.")
    plan = PlanSerializer()
    monthly_token_budget = serializers.IntegerField(allow_null=True)
    alert_webhook_url = serializers.CharField(help_text="Shown to owners and admins only (empty for members).")
    alert_webhook_secret = serializers.CharField(
        help_text="HMAC-SHA256 key of the X-LLMOS-Signature header. Shown to owners and admins only."
    )
    created_at = serializers.DateTimeField()


class OrganizationCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)


class OrganizationUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False)
    monthly_token_budget = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**15)
    alert_webhook_url = serializers.URLField(required=False, allow_blank=True, max_length=200)


class MembershipSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "role", "created_at"]
        read_only_fields = fields


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True, allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "created_at"]
        read_only_fields = fields


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class InvitationAcceptSerializer(serializers.Serializer):
    token = StrictCharField(max_length=500, help_text="The token at the end of the invitation link.")


class OrgApiKeySerializer(ApiKeySerializer):
    created_by = serializers.EmailField(
        source="user.email", read_only=True, help_text="The member it is attributed to."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "created_by"]
        read_only_fields = fields
