"""Console pages: the user's knowledge bases, one base with its documents (upload, status,
delete), and a JSON status endpoint the page polls while documents are being processed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.typing import AuthenticatedRequest
from batches import services as file_services
from knowledge import formats, selectors, services
from knowledge.forms import DocumentUploadForm, KnowledgeBaseForm
from knowledge.models import KnowledgeBase


def _own_base(request: AuthenticatedRequest, knowledge_base_id: str) -> KnowledgeBase:
    base = selectors.knowledge_base_with_counts(user=request.user, knowledge_base_id=knowledge_base_id)
    if base is None:
        raise Http404("No such knowledge base.")
    return base


@login_required
def knowledge_bases_page(request: AuthenticatedRequest) -> HttpResponse:
    form = KnowledgeBaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            base = services.knowledge_base_create(
                user=request.user, name=form.cleaned_data["name"], embedding_model=form.cleaned_data["embedding_model"]
            )
        except services.KnowledgeError as exc:
            form.add_error("embedding_model", exc.message)
        else:
            messages.success(request, f"Knowledge base “{base.name}” created. Upload documents to it.")
            return redirect("knowledge-base", knowledge_base_id=base.pk)
    bases, has_more = selectors.knowledge_bases_for_user(user=request.user, limit=100)
    status = 400 if request.method == "POST" else 200
    context = {
        "bases": bases,
        "has_more": has_more,
        "form": form,
        "used_bytes": selectors.assistants_bytes_for_user(user=request.user),
        "quota_bytes": request.user.plan.knowledge_max_bytes if request.user.plan else None,
    }
    return render(request, "knowledge/knowledge_bases.html", context, status=status)


@login_required
def knowledge_base_page(request: AuthenticatedRequest, knowledge_base_id: str) -> HttpResponse:
    base = _own_base(request, knowledge_base_id)
    form = DocumentUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            file = file_services.file_create(
                user=request.user, filename=upload.name or "", purpose="assistants", data=upload.read()
            )
        except file_services.BatchInputError as exc:
            form.add_error("file", exc.message)
        else:
            services.knowledge_document_add(knowledge_base=base, file=file)
            messages.success(request, f"“{file.filename}” uploaded; it is being processed.")
            return redirect("knowledge-base", knowledge_base_id=base.pk)
    context = {"base": base, "documents": selectors.documents_for_base(knowledge_base=base), "form": form}
    return render(request, "knowledge/knowledge_base.html", context, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def knowledge_base_status(request: AuthenticatedRequest, knowledge_base_id: str) -> JsonResponse:
    base = _own_base(request, knowledge_base_id)
    documents = selectors.documents_for_base(knowledge_base=base)
    return JsonResponse(
        {
            "vector_store": formats.vector_store_object(base),
            "documents": [
                {
                    "id": document.pk,
                    "status": document.status,
                    "label": document.get_status_display(),
                    "progress": document.progress_percent,
                    "chunks": document.chunks_total,
                    "error": document.error,
                }
                for document in documents
            ],
        }
    )


@login_required
@require_POST
def knowledge_base_delete_page(request: AuthenticatedRequest, knowledge_base_id: str) -> HttpResponse:
    base = _own_base(request, knowledge_base_id)
    services.knowledge_base_delete(knowledge_base=base)
    messages.success(request, f"Knowledge base “{base.name}” deleted, with its documents' chunks and vectors.")
    return redirect("knowledge-bases")


@login_required
@require_POST
def document_delete_page(request: AuthenticatedRequest, knowledge_base_id: str, document_id: int) -> HttpResponse:
    base = _own_base(request, knowledge_base_id)
    document = selectors.document_for_user(user=request.user, document_id=document_id)
    if document is None or document.knowledge_base_id != base.pk:
        raise Http404("No such document.")
    file = document.file
    services.knowledge_document_delete(document=document)
    if not file.documents.exists():  # uploaded here and used nowhere else: its bytes go too
        file_services.file_delete(file=file)
    messages.success(request, f"“{document.filename}” deleted, with its chunks and vectors.")
    return redirect("knowledge-base", knowledge_base_id=base.pk)
