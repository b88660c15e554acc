from __future__ import annotations

from django import forms
from django.contrib import admin

from audit.admin_mirror import AuditedAdminMixin
from audit.models import AuditAction
from inference.engine.types import CAPABILITIES
from inference.models import Deployment, RegisteredModel
from inference.runtime import get_manager


class WriteOnlyKeyMixin:
    """`upstream_api_key` is write-only: never rendered back into the page (or its source), a blank
    field keeps the saved key, and `clear_upstream_api_key` removes it."""

    def _setup_key_field(self) -> None:
        self._saved_key = self.instance.upstream_api_key if self.instance.pk else ""  # type: ignore[attr-defined]
        key_field = self.fields["upstream_api_key"]  # type: ignore[attr-defined]
        key_field.widget.attrs["placeholder"] = (
            "set (unchanged; type a new key to replace it)" if self._saved_key else "not set"
        )

    def clean_upstream_api_key(self) -> str:
        return self.cleaned_data.get("upstream_api_key") or self._saved_key  # type: ignore[attr-defined]


def _key_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sent as `Authorization: Bearer …` to the upstream. Never shown again once saved.",
    )


class RegisteredModelForm(WriteOnlyKeyMixin, forms.ModelForm):
    """The upstream API key is write-only (see WriteOnlyKeyMixin); fallbacks are typed as a
    comma-separated list, capabilities ticked."""

    upstream_url = forms.URLField(
        required=False,
        assume_scheme="http",
        help_text="Base URL, e.g. http://gpu-host:8000/v1. With deployments below, theirs are used instead.",
    )
    upstream_api_key = _key_field()
    clear_upstream_api_key = forms.BooleanField(required=False, label="Remove the saved upstream API key (if any)")
    fallbacks = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Other model names, comma-separated, tried in order when every deployment of this one fails.",
    )
    capabilities = forms.MultipleChoiceField(
        required=False,
        choices=[(c, c) for c in CAPABILITIES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Optional OpenAI parameters the upstream supports; requests using others get a 400.",
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "kind",
            "backend",
            "source",
            "upstream_url",
            "upstream_api_key",
            "clear_upstream_api_key",
            "upstream_model",
            "context_length",
            "enabled",
            "owned_by",
            "description",
            "fallbacks",
            "capabilities",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_key_field()
        if not self.is_bound:
            self.initial["fallbacks"] = ", ".join(self.instance.fallbacks or [])

    def clean_fallbacks(self) -> list[str]:
        names = [name.strip() for name in (self.cleaned_data.get("fallbacks") or "").split(",") if name.strip()]
        known = set(RegisteredModel.objects.filter(name__in=names).values_list("name", flat=True))
        missing = [name for name in names if name not in known]
        if missing:
            raise forms.ValidationError(f"No such model: {', '.join(missing)}.")
        return list(dict.fromkeys(names))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_upstream_api_key"):
            cleaned["upstream_api_key"] = ""
        return cleaned


class DeploymentForm(WriteOnlyKeyMixin, forms.ModelForm):
    upstream_url = forms.URLField(
        required=False, assume_scheme="http", help_text="Base URL, e.g. http://gpu-host:8000/v1"
    )
    upstream_api_key = _key_field()
    clear_upstream_api_key = forms.BooleanField(required=False, label="Remove the saved key")

    class Meta:
        model = Deployment
        fields = [
            "name",
            "kind",
            "upstream_url",
            "upstream_api_key",
            "clear_upstream_api_key",
            "upstream_model",
            "weight",
            "timeout_s",
            "max_parallel_requests",
            "enabled",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_key_field()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_upstream_api_key"):
            cleaned["upstream_api_key"] = ""
        return cleaned


class DeploymentInline(admin.TabularInline):
    """A model group's deployments, with each one's health as this process sees it."""

    model = Deployment
    form = DeploymentForm
    extra = 0
    readonly_fields = ["health"]

    @admin.display(description="Health (this process)")
    def health(self, obj: Deployment) -> str:
        if obj.pk is None:
            return "-"
        info = get_manager().state().get(obj.model.name, {})
        for deployment in info.get("deployments") or []:
            if deployment["id"] == str(obj.pk):
                if deployment["healthy"]:
                    return f"healthy, {deployment['in_flight']} in flight"
                return f"cooling down {deployment['cooldown_left_s']} s ({deployment['last_error']})"
        return "not loaded"


@admin.register(RegisteredModel)
class RegisteredModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = RegisteredModelForm
    inlines = [DeploymentInline]
    audit_create, audit_change, audit_delete = (
        AuditAction.MODEL_CREATE,
        AuditAction.MODEL_CHANGE,
        AuditAction.MODEL_DELETE,
    )
    # Values of these are kept; upstream_api_key is named when it changes, never its value.
    audit_values = (
        "name",
        "kind",
        "backend",
        "source",
        "upstream_url",
        "upstream_model",
        "context_length",
        "enabled",
        "fallbacks",
        "capabilities",
    )
    list_display = ["name", "kind", "backend", "context_length", "enabled", "deployment_count", "load_state"]
    list_filter = ["kind", "backend", "enabled"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_deployments=Count("deployments"))

    @admin.display(description="Deployments", ordering="_deployments")
    def deployment_count(self, obj: RegisteredModel) -> int:
        return getattr(obj, "_deployments", 0)

    @admin.display(description="State in this process")
    def load_state(self, obj: RegisteredModel) -> str:
        """`ready on llama_cpp`, or `ready on transformers (fallback: why)` when it is not the chosen one."""
        info = get_manager().state().get(obj.name, {})
        state = info.get("state", "unloaded")
        if state == "ready" and info.get("runner"):
            state = f"{state} on {info['runner']}"
        if info.get("fallback"):
            state = f"{state} (fallback: {info['fallback']})"
        return state
