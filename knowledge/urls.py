from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from knowledge import pages, views

# Under /v1/, before the OpenAI API's catch-all (inference.urls.openai_urls).
openai_urls: list[URLPattern | URLResolver] = [
    path("vector_stores", views.vector_stores, name="v1-vector-stores"),
    path("vector_stores/<str:vector_store_id>", views.vector_store_detail, name="v1-vector-store"),
    path("vector_stores/<str:vector_store_id>/files", views.vector_store_files, name="v1-vector-store-files"),
    path(
        "vector_stores/<str:vector_store_id>/files/<str:file_id>",
        views.vector_store_file_detail,
        name="v1-vector-store-file",
    ),
    path("vector_stores/<str:vector_store_id>/search", views.vector_store_search, name="v1-vector-store-search"),
]

# Under /console/.
console_urls: list[URLPattern | URLResolver] = [
    path("knowledge/", pages.knowledge_bases_page, name="knowledge-bases"),
    path("knowledge/<str:knowledge_base_id>/", pages.knowledge_base_page, name="knowledge-base"),
    path("knowledge/<str:knowledge_base_id>/delete/", pages.knowledge_base_delete_page, name="knowledge-base-delete"),
    path("knowledge/<str:knowledge_base_id>/status/", pages.knowledge_base_status, name="knowledge-base-status"),
    path(
        "knowledge/<str:knowledge_base_id>/documents/<int:document_id>/delete/",
        pages.document_delete_page,
        name="knowledge-document-delete",
    ),
]
