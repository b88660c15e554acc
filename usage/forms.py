from __future__ import annotations

from collections.abc import Sequence

from django import forms
from django.utils.translation import gettext_lazy as _

from usage.selectors import DateRange

MAX_RANGE_DAYS = 366


class UsageFilterForm(forms.Form):
    """Date range and filters for the usage page and its CSV export."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("From"))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label=_("To"))
    model = forms.ChoiceField(label=_("Model"), required=False, choices=[("", _("All models"))])
    key = forms.TypedChoiceField(
        label=_("Key"), required=False, coerce=int, empty_value=None, choices=[("", _("All keys"))]
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", _("Any status")), ("ok", _("Succeeded")), ("error", _("Failed"))],
        label=_("Status"),
    )

    org = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Scope"))

    def __init__(
        self, *args, models: list[str], keys: list[tuple[int, str]], scopes: Sequence[tuple[int, str]] = (), **kwargs
    ):
        super().__init__(*args, **kwargs)
        scope_field = self.fields["org"]
        assert isinstance(scope_field, forms.ChoiceField)
        scope_field.choices = [("", _("Personal")), *scopes]
        if not scopes:
            del self.fields["org"]
        model_field, key_field = self.fields["model"], self.fields["key"]
        assert isinstance(model_field, forms.ChoiceField) and isinstance(key_field, forms.ChoiceField)
        model_field.choices = [("", _("All models")), *((name, name) for name in models)]
        key_field.choices = [("", _("All keys")), *keys]

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["period"] = DateRange.from_bounds(cleaned.get("start"), cleaned.get("end"), max_days=MAX_RANGE_DAYS)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned
