"""The usage JSON API (/api/usage/): the caller's own usage over a date range, grouped."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import org_selectors
from accounts.models import Membership
from usage import budgets, selectors
from usage.forms import MAX_RANGE_DAYS
from usage.selectors import DateRange


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="First UTC day (default: 29 days before end).")
    end = serializers.DateField(required=False, help_text="Last UTC day, included (default: today).")
    group_by = serializers.ChoiceField(
        choices=["day", "model", "key", "endpoint", "member", "end_user"],
        default="day",
        help_text="`member`: by the member requests are attributed to (organizations, owners and admins);"
        " `end_user`: by the OpenAI `user` the requests sent.",
    )
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    end_user = serializers.CharField(
        required=False, allow_blank=True, max_length=256, help_text="Only requests that sent this OpenAI `user`."
    )
    organization = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="An organization you are a member of: its usage (owners and admins: everyone's; members: their"
        " own). Without it: your personal usage (not on organization keys).",
    )

    def validate(self, attrs):
        try:
            attrs["period"] = DateRange.from_bounds(attrs.get("start"), attrs.get("end"), max_days=MAX_RANGE_DAYS)
        except ValueError as exc:
            raise serializers.ValidationError({"start": str(exc)}) from exc
        return attrs


class UsageTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]  # a field, not Serializer.errors
    cached = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class UsageGroupSerializer(UsageTotalsSerializer):
    key = serializers.CharField(help_text="The day, model, key name, endpoint or end user (`user`).")


class LatencySerializer(serializers.Serializer):
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    ttft_p50_ms = serializers.IntegerField(allow_null=True)
    ttft_p95_ms = serializers.IntegerField(allow_null=True)


class BudgetSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="The calendar month (UTC), e.g. 2026-11.")
    budget = serializers.IntegerField(help_text="Tokens per month.")
    tokens = serializers.IntegerField(help_text="Tokens used this month.")
    percent = serializers.IntegerField()


class SpendSerializer(serializers.Serializer):
    model = serializers.CharField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    spend = serializers.DecimalField(max_digits=20, decimal_places=4)


class UsageResponseSerializer(serializers.Serializer):
    organization = serializers.IntegerField(allow_null=True)
    budget = BudgetSerializer(
        allow_null=True, help_text="This month's budget of the scope (organizations: owners and admins only)."
    )
    spend = SpendSerializer(many=True, help_text="Spend per priced model in the period.")
    spend_total = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField()
    totals = UsageTotalsSerializer()
    latency = LatencySerializer()
    data = UsageGroupSerializer(many=True)  # type: ignore[assignment]  # a field, not Serializer.data


def _group_key(row: dict, group_by: str) -> str:
    if group_by == "day":
        return row["day"].isoformat()
    if group_by == "key":
        return row["api_key_name"]
    if group_by == "end_user":
        return row["end_user"]
    if group_by == "member":
        return row["user__email"]
    return row["model" if group_by == "model" else "endpoint"]


class UsageView(APIView):
    @extend_schema(
        parameters=[UsageQuerySerializer],
        responses=UsageResponseSerializer,
        summary="Your usage (or an organization's) over a date range, grouped by day, model, key or endpoint",
        tags=["usage"],
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF reads `?start=` from a QueryDict as "not given".
        query = UsageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        period, group_by = query.validated_data["period"], query.validated_data["group_by"]
        membership = None
        org_id = query.validated_data.get("organization")
        if org_id is not None:
            try:
                membership = org_selectors.membership_for(user=request.user, organization_id=org_id)
            except Membership.DoesNotExist as exc:
                raise NotFound("No such organization.") from exc
        rows = selectors.usage_for_user(
            user=request.user,
            period=period,
            model=query.validated_data.get("model", ""),
            membership=membership,
            end_user=query.validated_data.get("end_user", ""),
        )
        if group_by == "day":
            groups = selectors.usage_daily(rows, period)
        else:
            groups = selectors.usage_by(rows, {"key": "api_key", "member": "user__email"}.get(group_by, group_by))
        data = [
            {
                **{name: group[name] for name in UsageGroupSerializer().fields if name != "key"},
                "key": _group_key(group, group_by),
            }
            for group in groups
        ]
        if membership is None:
            budget = budgets.budget_status(f"user:{request.user.pk}")
        else:
            budget = budgets.budget_status(f"org:{org_id}") if membership.manages else None
        spend, spend_total = selectors.usage_spend(selectors.usage_by(rows, "model"))
        body = {
            "organization": org_id,
            "budget": budget,
            "spend": spend,
            "spend_total": spend_total,
            "start": period.start,
            "end": period.end,
            "group_by": group_by,
            "totals": selectors.usage_totals(rows),
            "latency": selectors.latency_percentiles(rows),
            "data": data,
        }
        return Response(UsageResponseSerializer(body).data)
