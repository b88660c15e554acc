from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from audit.models import AuditAction
from audit.selectors import EARLIEST_DAY, LATEST_DAY


class AuditFilterForm(forms.Form):
    """Filters of the audit page and its CSV export: one action, a range of UTC days."""

    action = forms.ChoiceField(
        required=False, label=_("Action"), choices=[("", _("All actions")), *AuditAction.choices]
    )
    start = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}), help_text=_("UTC day")
    )
    end = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}), help_text=_("UTC day, included")
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        for bound in (start, end):
            if bound is not None and not EARLIEST_DAY <= bound <= LATEST_DAY:
                raise forms.ValidationError(
                    _("Dates must lie between %(earliest)s and %(latest)s."),
                    params={"earliest": EARLIEST_DAY, "latest": LATEST_DAY},
                )
        if start and end and start > end:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        return cleaned
