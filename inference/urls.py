from __future__ import annotations

from django.urls import path, re_path

from batches import urls as batches_urls
from inference import native_api, openai_views
from knowledge import urls as knowledge_urls

openai_urls = [
    path("models", openai_views.models_list, name="v1-models"),
    path("models/<path:model_id>", openai_views.model_detail, name="v1-model"),
    path("chat/completions", openai_views.chat_completions, name="v1-chat-completions"),
    path("completions", openai_views.completions, name="v1-completions"),
    path("embeddings", openai_views.embeddings, name="v1-embeddings"),
    *batches_urls.openai_urls,  # files and batches
    *knowledge_urls.openai_urls,  # vector stores
    re_path(r"^(?P<rest>(?s:.*))$", openai_views.not_found),  # (?s): a %0A in the path is still ours
]

native_urls = [
    path("generate", native_api.GenerateView.as_view(), name="native-generate"),
    path("ask", native_api.AskView.as_view(), name="native-ask"),
    path("classify", native_api.ClassifyView.as_view(), name="native-classify"),
]
