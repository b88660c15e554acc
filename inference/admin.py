from __future__ import annotations

from django import forms
from django.contrib import admin

from inference.models import RegisteredModel
from inference.runtime import get_manager


class RegisteredModelForm(forms.ModelForm):
    upstream_url = forms.URLField(
        required=False, assume_scheme="http", help_text="Base URL, e.g. http://gpu-host:8000/v1"
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
            "upstream_model",
            "context_length",
            "enabled",
            "owned_by",
            "description",
        ]
        widgets = {"upstream_api_key": forms.PasswordInput(render_value=True)}


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    form = RegisteredModelForm
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
