from __future__ import annotations

from django import forms
from django.contrib import admin

from audit.admin_mirror import AuditedAdminMixin
from audit.models import AuditAction
from inference.models import RegisteredModel
from inference.runtime import get_manager


class RegisteredModelForm(forms.ModelForm):
    """The upstream API key is write-only: never rendered back into the page (or its source), a
    blank field keeps the saved key, and a checkbox removes it."""

    upstream_url = forms.URLField(
        required=False, assume_scheme="http", help_text="Base URL, e.g. http://gpu-host:8000/v1"
    )
    upstream_api_key = forms.CharField(
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sent as `Authorization: Bearer …` to the upstream. Never shown again once saved.",
    )
    clear_upstream_api_key = forms.BooleanField(required=False, label="Remove the saved upstream API key (if any)")

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
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved_key = self.instance.upstream_api_key if self.instance.pk else ""
        key_field = self.fields["upstream_api_key"]
        key_field.widget.attrs["placeholder"] = (
            "set (unchanged; type a new key to replace it)" if self._saved_key else "not set"
        )

    def clean_upstream_api_key(self) -> str:
        return self.cleaned_data.get("upstream_api_key") or self._saved_key

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_upstream_api_key"):
            cleaned["upstream_api_key"] = ""
        return cleaned


@admin.register(RegisteredModel)
class RegisteredModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = RegisteredModelForm
    audit_create, audit_change, audit_delete = (
        AuditAction.MODEL_CREATE,
        AuditAction.MODEL_CHANGE,
        AuditAction.MODEL_DELETE,
    )
    # Values of these are kept; upstream_api_key is named when it changes, never its value.
    audit_values = ("name", "kind", "backend", "source", "upstream_url", "upstream_model", "context_length", "enabled")
    list_display = ["name", "kind", "backend", "context_length", "enabled", "load_state"]
    list_filter = ["kind", "backend", "enabled"]
    search_fields = ["name", "description"]

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
