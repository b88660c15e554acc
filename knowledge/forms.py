from __future__ import annotations

from django import forms
from django.conf import settings

from inference.registry import enabled_specs
from knowledge.parsing import SUPPORTED


def _embedding_choices() -> list[tuple[str, str]]:
    names = sorted(name for name, spec in enabled_specs().items() if spec.kind == "embedding")
    default = settings.DEFAULT_EMBEDDING_MODEL
    names.sort(key=lambda name: name != default)  # the default first
    return [(name, name) for name in names]


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=200)
    embedding_model = forms.ChoiceField(
        choices=(), help_text="Documents and questions are embedded with this model; it cannot be changed later."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["embedding_model"].choices = _embedding_choices()


class DocumentUploadForm(forms.Form):
    file = forms.FileField(help_text=f"Plain text, Markdown, HTML or PDF ({', '.join(SUPPORTED)}).")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.KNOWLEDGE_FILE_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {settings.KNOWLEDGE_FILE_MAX_BYTES} bytes.")
        return upload
