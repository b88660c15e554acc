from __future__ import annotations

from django.urls import path

from playground import views

urlpatterns = [
    path("", views.page, name="playground"),
    path("c/<int:conversation_id>/", views.page, name="playground-conversation"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="playground-rename"),
    path("c/<int:conversation_id>/delete/", views.conversation_delete, name="playground-delete"),
    path("embeddings/", views.embeddings, name="playground-embeddings"),
]
