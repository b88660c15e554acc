"""OpenAI's Files and Batch APIs under /v1 (API keys, metered, OpenAI-shaped errors through
`openai_endpoint`), and the console page listing a person's batches."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from accounts.typing import AuthenticatedRequest
from batches import formats, selectors, services
from batches.models import Batch, File
from inference.errors import ApiError, invalid
from inference.openai_views import authenticate, json_body, openai_endpoint
from usage.metering import RequestMeter


def _not_found(kind: str, object_id: str, param: str | None = None) -> ApiError:
    return ApiError(f"No such {kind} object: {object_id}", status=404, param=param, code="not_found")


def _rejected(exc: services.BatchInputError) -> ApiError:
    return invalid(exc.message, param=exc.param)


def _limit(request: HttpRequest, default: int = 20) -> int:
    try:
        return max(1, min(100, int(request.GET.get("limit", default))))
    except ValueError as exc:
        raise invalid("'limit' must be an integer.", param="limit") from exc


# --- files -----------------------------------------------------------------------------------------


@openai_endpoint("files", "GET", "POST")
async def files(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    if request.method == "GET":
        listed = await sync_to_async(selectors.files_for_user)(
            user=caller.user, purpose=request.GET.get("purpose") or None, limit=_limit(request, 100)
        )
        return JsonResponse(formats.page([formats.file_object(f) for f in listed], has_more=False))
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid("Send the file as multipart/form-data field 'file'.", param="file")
    purpose = request.POST.get("purpose", "")
    try:
        created = await sync_to_async(services.file_create)(
            user=caller.user, filename=upload.name or "", purpose=purpose, data=upload.read()
        )
    except services.BatchInputError as exc:
        raise _rejected(exc) from exc
    return JsonResponse(formats.file_object(created))


async def _own_file(request: HttpRequest, meter: RequestMeter, file_id: str) -> File:
    caller = await authenticate(request, meter)
    found = await sync_to_async(selectors.file_for_user)(user=caller.user, file_id=file_id)
    if found is None:
        raise _not_found("File", file_id, param="file_id")
    return found


@openai_endpoint("files", "GET", "DELETE")
async def file_detail(request: HttpRequest, meter: RequestMeter, file_id: str) -> HttpResponseBase:
    found = await _own_file(request, meter, file_id)
    if request.method == "DELETE":
        try:
            await sync_to_async(services.file_delete)(file=found)
        except services.BatchInputError as exc:
            raise ApiError(exc.message, status=409, param=exc.param, code="file_in_use") from exc
        return JsonResponse({"id": file_id, "object": "file", "deleted": True})
    return JsonResponse(formats.file_object(found))


@openai_endpoint("files", "GET")
async def file_content(request: HttpRequest, meter: RequestMeter, file_id: str) -> HttpResponseBase:
    found = await _own_file(request, meter, file_id)
    if found.data is not None:  # a document (purpose `assistants`), as uploaded
        response = HttpResponse(bytes(found.data), content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{found.filename}"'
        return response
    response = HttpResponse(found.content.encode(), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return response


# --- batches ---------------------------------------------------------------------------------------


@openai_endpoint("batches", "GET", "POST")
async def batches(request: HttpRequest, meter: RequestMeter) -> HttpResponseBase:
    caller = await authenticate(request, meter)
    if request.method == "GET":
        page, has_more = await sync_to_async(selectors.batches_for_user)(
            user=caller.user, after=request.GET.get("after") or None, limit=_limit(request)
        )
        return JsonResponse(formats.page([formats.batch_object(b) for b in page], has_more=has_more))
    data = json_body(request)
    file_id = data.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        raise invalid("'input_file_id' is required.", param="input_file_id")
    metadata = data.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()) and len(metadata) <= 16
    ):
        raise invalid("'metadata' must be an object of at most 16 string values.", param="metadata")
    input_file = await sync_to_async(selectors.file_for_user)(user=caller.user, file_id=file_id)
    if input_file is None:
        raise _not_found("File", file_id, param="input_file_id")
    try:
        created = await sync_to_async(services.batch_create)(
            user=caller.user,
            api_key=caller.api_key,
            input_file=input_file,
            endpoint=str(data.get("endpoint", "")),
            completion_window=str(data.get("completion_window", "")),
            metadata=metadata,
        )
    except services.BatchInputError as exc:
        raise _rejected(exc) from exc
    return JsonResponse(formats.batch_object(created))


async def _own_batch(request: HttpRequest, meter: RequestMeter, batch_id: str) -> Batch:
    caller = await authenticate(request, meter)
    found = await sync_to_async(selectors.batch_for_user)(user=caller.user, batch_id=batch_id)
    if found is None:
        raise _not_found("Batch", batch_id, param="batch_id")
    return found


@openai_endpoint("batches", "GET")
async def batch_detail(request: HttpRequest, meter: RequestMeter, batch_id: str) -> HttpResponseBase:
    return JsonResponse(formats.batch_object(await _own_batch(request, meter, batch_id)))


@openai_endpoint("batches", "POST")
async def batch_cancel(request: HttpRequest, meter: RequestMeter, batch_id: str) -> HttpResponseBase:
    found = await _own_batch(request, meter, batch_id)
    try:
        cancelled = await sync_to_async(services.batch_cancel)(batch=found)
    except services.BatchInputError as exc:
        raise ApiError(exc.message, status=409, code="batch_not_cancellable") from exc
    return JsonResponse(formats.batch_object(cancelled))


# --- console ---------------------------------------------------------------------------------------


@login_required
def batches_page(request: AuthenticatedRequest) -> HttpResponseBase:
    page, has_more = selectors.batches_for_user(user=request.user, limit=100)
    return render(request, "batches/batches.html", {"batches": page, "has_more": has_more})
