"""The audit JSON API (/api/audit/): the caller's own events, newest first, a page at a time."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from accounts.org_selectors import org_ids_of
from audit.models import AuditAction, AuditEvent
from audit.selectors import EARLIEST_DAY, LATEST_DAY, audit_event_for_viewer, audit_events_for_user


class AuditQuerySerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    start = serializers.DateField(required=False, help_text="First UTC day.")
    end = serializers.DateField(required=False, help_text="Last UTC day, included.")

    def validate(self, attrs):
        for name in ("start", "end"):
            if name in attrs and not EARLIEST_DAY <= attrs[name] <= LATEST_DAY:
                raise serializers.ValidationError({name: f"Dates must lie between {EARLIEST_DAY} and {LATEST_DAY}."})
        if "start" in attrs and "end" in attrs and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "The start date must not be after the end date."})
        return attrs


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    action_label = serializers.CharField()
    actor = serializers.CharField(help_text="Who acted: an account name, `an operator`, or empty for the system.")
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target = serializers.CharField(help_text="The target's name when the event happened.")
    org_id = serializers.IntegerField(allow_null=True)
    ip = serializers.IPAddressField(allow_null=True, help_text="Shown on your own actions and on failed sign-ins.")
    request_id = serializers.CharField()
    metadata = serializers.DictField(help_text="Details: fields changed, the sign-in method, ... never secrets.")

    def to_representation(self, instance):
        if isinstance(instance, AuditEvent):
            instance = audit_event_for_viewer(instance, viewer=self.context["request"].user)
        return super().to_representation(instance)


class AuditPagination(PageNumberPagination):
    """Pages of 50 events; `page_size` (1 to 200) is checked, not silently replaced."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            elif parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class AuditEventListView(generics.ListAPIView):
    serializer_class = AuditEventSerializer
    pagination_class = AuditPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no real user
            return AuditEvent.objects.none()
        # A plain dict, not the QueryDict: DRF reads `?start=` from a QueryDict as "not given".
        query = AuditQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return audit_events_for_user(
            user=self.request.user,
            org_ids=org_ids_of(user=self.request.user),
            action=data.get("action", ""),
            start=data.get("start"),
            end=data.get("end"),
        )

    @extend_schema(
        parameters=[AuditQuerySerializer],
        summary="Your audit log: your actions, and those on your account and keys, newest first",
        tags=["audit"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
