"""Request validation for /v1/vector_stores (strict JSON types, as the rest of /v1)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.fields import StrictBooleanField, StrictCharField, StrictFloatField, StrictIntegerField

MAX_QUERY_CHARS = 4000
MAX_RESULTS = 50


class MetadataField(serializers.Field):
    """OpenAI's metadata: at most 16 string keys (64 chars) with string values (512 chars)."""

    default_error_messages = {"invalid": "Must be an object of at most 16 string values."}

    def to_internal_value(self, data):
        if not isinstance(data, dict) or len(data) > 16:
            self.fail("invalid")
        for key, value in data.items():
            if not isinstance(value, str) or len(key) > 64 or len(value) > 512 or "\x00" in key + value:
                self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class VectorStoreCreateSerializer(serializers.Serializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    file_ids = serializers.ListField(child=StrictCharField(max_length=40), required=False, max_length=500)
    metadata = MetadataField(required=False, allow_null=True)
    embedding_model = StrictCharField(required=False, max_length=200)


class VectorStoreUpdateSerializer(serializers.Serializer):
    name = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    metadata = MetadataField(required=False, allow_null=True)


class VectorStoreFileCreateSerializer(serializers.Serializer):
    file_id = StrictCharField(max_length=40)


class QueryField(serializers.Field):
    """`query`: a string, or a list of strings (joined)."""

    default_error_messages = {"invalid": "Must be a non-empty string or a list of non-empty strings."}

    def to_internal_value(self, data) -> str:
        parts = [data] if isinstance(data, str) else data
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) and p.strip() for p in parts):
            self.fail("invalid")
        text = "\n".join(parts)
        if len(text) > MAX_QUERY_CHARS or "\x00" in text:
            self.fail("invalid")
        return text

    def to_representation(self, value):
        return value


class RankingOptionsSerializer(serializers.Serializer):
    ranker = StrictCharField(required=False, max_length=64)
    score_threshold = StrictFloatField(required=False, min_value=0.0, max_value=1.0)


class VectorStoreSearchSerializer(serializers.Serializer):
    query = QueryField()
    max_num_results = StrictIntegerField(required=False, default=10, min_value=1, max_value=MAX_RESULTS)
    ranking_options = RankingOptionsSerializer(required=False)
    rewrite_query = StrictBooleanField(required=False)
