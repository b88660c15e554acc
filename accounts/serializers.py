from __future__ import annotations

from rest_framework import serializers

from accounts.fields import StrictCharField
from accounts.models import ApiKey, Plan


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "name",
            "requests_per_minute",
            "tokens_per_minute",
            "tokens_per_day",
            "max_tokens_per_request",
            "max_prompt_tokens_per_request",
            "max_concurrent_requests",
            "allowed_models",
            "monthly_token_budget",
        ]


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    plan = PlanSerializer(allow_null=True)


class ApiKeySerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "allowed_models",
            "allowed_ips",
            "monthly_token_budget",
            "organization",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Must be in the future.")
    allowed_models = serializers.ListField(child=StrictCharField(max_length=200), required=False, max_length=100)
    allowed_ips = serializers.ListField(
        child=StrictCharField(max_length=64), required=False, max_length=100, help_text="Addresses or CIDR networks."
    )
    monthly_token_budget = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=10**15,
        help_text="Tokens this key may use per calendar month (UTC); null: no budget of its own.",
    )

    def validate_expires_at(self, value):
        if value is not None and value.year >= 9000:  # far-future dates overflow when stored as UTC
            raise serializers.ValidationError("Choose an expiry before the year 9000.")
        return value


class ApiKeyRenameSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
