"""OpenAI's vector store API under /v1 (API keys, metered, OpenAI-shaped errors through
`openai_endpoint`); the console pages are in knowledge.pages."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase

from accounts.caller import Caller
from batches import selectors as file_selectors
from batches.formats import page
from inference.errors import ApiError, invalid
from inference.openai_views import authenticate, json_body, openai_endpoint
from inference.serializers import validated
from knowledge import formats, retrieval, selectors, services
from knowledge.models import Document, KnowledgeBase
from knowledge.serializers import (
    VectorStoreCreateSerializer,
    VectorStoreFileCreateSerializer,
    VectorStoreSearchSerializer,
    VectorStoreUpdateSerializer,
)
from usage.metering import RequestMeter

ENDPOINT = "vector_stores"


def _not_found(kind: str, object_id: str, param: str | None = None) -> ApiError:
    return ApiError(f"No such {kind}: {object_id}", status=404, param=param, code="not_found")


def _rejected(exc: services.KnowledgeError) -> ApiError:
    if exc.code == "not_found" or exc.code == "model_not_found":
        return ApiError(exc.message, status=404, param=exc.param, code=exc.code)
    return invalid(exc.message, param=exc.param, code=exc.code)


def _limit(request: HttpRequest, default: int = 20) -> int:
    raw = request.GET.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 100):
        raise invalid("'limit' must be an integer from 1 to 100.", param="limit")
    return int(raw)


async def _own_base(request: HttpRequest, meter: RequestMeter, vector_store_id: str) -> tuple[Caller, KnowledgeBase]:
    caller = await authenticate(request, meter)
    found = await sync_to_async(selectors.knowledge_base_with_counts)(
        user=caller.user, knowledge_base_id=vector_store_id
    )
    if found is None:
        raise _not_found("vector store", vector_store_id, param="vector_store_id")
    return caller, found


async def _reloaded(caller: Caller, base: KnowledgeBase) -> dict:
    fresh = await sync_to_async(selectors.knowledge_base_with_counts)(user=caller.user, knowledge_base_id=base.pk)
    return formats.vector_store_object(fresh or base)


@openai_endpoint(ENDPOINT, "GET", "POST")
async def vector_stores(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    if request.method == "GET":
        bases, has_more = await sync_to_async(selectors.knowledge_bases_for_user)(
            user=caller.user, after=request.GET.get("after") or None, limit=_limit(request)
        )
        return JsonResponse(page([formats.vector_store_object(base) for base in bases], has_more=has_more))
    data = validated(VectorStoreCreateSerializer, json_body(request))
    files = []
    for file_id in data.get("file_ids") or []:
        file = await sync_to_async(file_selectors.file_for_user)(user=caller.user, file_id=file_id)
        if file is None:
            raise _not_found("file", file_id, param="file_ids")
        files.append(file)

    def create() -> KnowledgeBase:
        base = services.knowledge_base_create(
            user=caller.user,
            name=data.get("name") or "",
            embedding_model=data.get("embedding_model"),
            metadata=data.get("metadata"),
        )
        for file in files:
            services.knowledge_document_add(knowledge_base=base, file=file)
        return base

    try:
        created = await sync_to_async(create)()
    except services.KnowledgeError as exc:
        raise _rejected(exc) from exc
    return JsonResponse(await _reloaded(caller, created))


@openai_endpoint(ENDPOINT, "GET", "POST", "DELETE")
async def vector_store_detail(request: HttpRequest, meter: RequestMeter, vector_store_id: str) -> HttpResponseBase:
    caller, base = await _own_base(request, meter, vector_store_id)
    if request.method == "DELETE":
        await sync_to_async(services.knowledge_base_delete)(knowledge_base=base)
        return JsonResponse({"id": vector_store_id, "object": "vector_store.deleted", "deleted": True})
    if request.method == "POST":
        data = validated(VectorStoreUpdateSerializer, json_body(request))
        await sync_to_async(services.knowledge_base_update)(
            knowledge_base=base, name=data.get("name"), metadata=data.get("metadata")
        )
        return JsonResponse(await _reloaded(caller, base))
    return JsonResponse(formats.vector_store_object(base))


@openai_endpoint(ENDPOINT, "GET", "POST")
async def vector_store_files(request: HttpRequest, meter: RequestMeter, vector_store_id: str) -> HttpResponseBase:
    caller, base = await _own_base(request, meter, vector_store_id)
    if request.method == "GET":
        status = request.GET.get("filter") or None
        if status is not None and status not in Document.Status.values:
            raise invalid(f"'filter' must be one of {', '.join(Document.Status.values)}.", param="filter")
        documents = await sync_to_async(selectors.documents_for_base)(
            knowledge_base=base, status=status, limit=_limit(request)
        )
        return JsonResponse(page([formats.vector_store_file_object(d) for d in documents], has_more=False))
    data = validated(VectorStoreFileCreateSerializer, json_body(request))
    file = await sync_to_async(file_selectors.file_for_user)(user=caller.user, file_id=data["file_id"])
    if file is None:
        raise _not_found("file", data["file_id"], param="file_id")
    try:
        document = await sync_to_async(services.knowledge_document_add)(knowledge_base=base, file=file)
    except services.KnowledgeError as exc:
        raise _rejected(exc) from exc
    return JsonResponse(formats.vector_store_file_object(document))


@openai_endpoint(ENDPOINT, "GET", "DELETE")
async def vector_store_file_detail(
    request: HttpRequest, meter: RequestMeter, vector_store_id: str, file_id: str
) -> HttpResponseBase:
    caller, base = await _own_base(request, meter, vector_store_id)
    document = await sync_to_async(selectors.document_for_base)(knowledge_base=base, file_id=file_id)
    if document is None:
        raise _not_found("file", file_id, param="file_id")
    if request.method == "DELETE":
        await sync_to_async(services.knowledge_document_delete)(document=document)
        return JsonResponse({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})
    return JsonResponse(formats.vector_store_file_object(document))


@openai_endpoint(ENDPOINT, "POST")
async def vector_store_search(request: HttpRequest, meter: RequestMeter, vector_store_id: str) -> HttpResponseBase:
    caller, base = await _own_base(request, meter, vector_store_id)
    data = validated(VectorStoreSearchSerializer, json_body(request))
    results = await retrieval.search(
        knowledge_base=base,
        caller=caller,
        query=data["query"],
        limit=data["max_num_results"],
        score_threshold=(data.get("ranking_options") or {}).get("score_threshold", 0.0),
        meter=meter,
    )
    return JsonResponse(
        {
            "object": "vector_store.search_results.page",
            "search_query": [data["query"]],
            "data": [formats.search_result(result) for result in results],
            "has_more": False,
            "next_page": None,
        }
    )
