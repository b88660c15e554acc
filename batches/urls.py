from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from batches import views

# Under /v1/, before the OpenAI API's catch-all (inference.urls.openai_urls).
openai_urls: list[URLPattern | URLResolver] = [
    path("files", views.files, name="v1-files"),
    path("files/<str:file_id>", views.file_detail, name="v1-file"),
    path("files/<str:file_id>/content", views.file_content, name="v1-file-content"),
    path("batches", views.batches, name="v1-batches"),
    path("batches/<str:batch_id>", views.batch_detail, name="v1-batch"),
    path("batches/<str:batch_id>/cancel", views.batch_cancel, name="v1-batch-cancel"),
]

# Under /console/.
console_urls: list[URLPattern | URLResolver] = [
    path("batches/", views.batches_page, name="batches"),
]
