from __future__ import annotations

from django import forms


class ConversationRenameForm(forms.Form):
    title = forms.CharField(max_length=200, strip=True)
