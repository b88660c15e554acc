"""Playground pages (login required) and its embeddings endpoint. Thin: selectors read, services write."""

from __future__ import annotations

import logging
import uuid

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from accounts.caller import Caller
from accounts.typing import AuthenticatedRequest
from inference import services as inference_services
from inference.errors import ApiError, from_limit_exceeded, invalid
from inference.serializers import MAX_TEXT_CHARS
from knowledge import selectors as knowledge_selectors
from llmos_portal import jsonbody
from playground import selectors, services
from playground.consumers import max_message_bytes
from playground.forms import ConversationRenameForm
from playground.models import Conversation
from usage.metering import LimitExceeded, metered

logger = logging.getLogger(__name__)

MAX_EMBEDDING_TEXTS = 32


def _own_conversation(request: AuthenticatedRequest, conversation_id: int) -> Conversation:
    try:
        return selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


@login_required
def page(request: AuthenticatedRequest, conversation_id: int | None = None) -> HttpResponse:
    conversation = _own_conversation(request, conversation_id) if conversation_id is not None else None
    user = account_selectors.user_with_plan(user_id=request.user.pk)
    models = async_to_sync(inference_services.models_for_caller)(Caller.for_user(user))
    chat_models = [spec.name for spec in models if spec.kind == "chat"]
    embedding_models = [spec.name for spec in models if spec.kind == "embedding"]
    default_chat = settings.DEFAULT_CHAT_MODEL if settings.DEFAULT_CHAT_MODEL in chat_models else None
    max_tokens_cap = Caller.for_user(user).plan.max_tokens_per_request
    config = {
        "wsPath": "/ws/playground/",
        "embeddingsUrl": reverse("playground-embeddings"),
        "conversationUrl": reverse("playground-conversation", args=[0]).replace("/0/", "/{id}/"),
        "apiBase": request.build_absolute_uri("/v1"),
        "defaultModel": default_chat or (chat_models[0] if chat_models else ""),
        "maxMessageBytes": max_message_bytes(),
        "maxTokensCap": max_tokens_cap,
    }
    context = {
        "conversation": conversation,
        "conversation_data": selectors.conversation_as_dict(conversation=conversation) if conversation else None,
        "conversations": selectors.conversations_for_user(user=request.user)[:100],
        "chat_models": chat_models,
        "embedding_models": embedding_models,
        "selected_model": conversation.model if conversation else config["defaultModel"],
        "default_embedding_model": settings.DEFAULT_EMBEDDING_MODEL,
        "params": conversation.params if conversation else {},
        "max_tokens_cap": max_tokens_cap,
        "knowledge_bases": knowledge_selectors.knowledge_bases_for_user(user=request.user, limit=100)[0],
        "config": config,
    }
    return render(request, "playground/playground.html", context)


@login_required
@require_POST
def conversation_rename(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _own_conversation(request, conversation_id)
    form = ConversationRenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        messages.success(request, _("Conversation renamed."))
    else:
        messages.error(request, _("A conversation needs a title of at most 200 characters."))
    return redirect("playground-conversation", conversation_id=conversation.pk)


@login_required
@require_POST
def conversation_delete(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _own_conversation(request, conversation_id)
    title = conversation.title
    services.conversation_delete(conversation=conversation)
    messages.success(request, _("Conversation “%(title)s” deleted.") % {"title": title})
    return redirect("playground")


# --- embeddings (JSON, session auth + CSRF) ------------------------------------------------------


def _embedding_input(request: HttpRequest) -> tuple[str, list[str]]:
    try:
        data = jsonbody.loads(request.body)
    except jsonbody.JsonBodyError as exc:
        raise invalid(f"Send a JSON object. {exc.message}", code="invalid_json", param=exc.param) from None
    if not isinstance(data, dict):
        raise invalid("Send a JSON object.", code="invalid_json")
    model = data.get("model") or settings.DEFAULT_EMBEDDING_MODEL
    texts = data.get("texts")
    if not isinstance(model, str):
        raise invalid("`model` must be a string.", param="model")
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise invalid("`texts` must be a list of strings.", param="texts")
    texts = [text.strip() for text in texts if text.strip()]
    if not texts:
        raise invalid(_("Enter at least one text."), param="texts")
    if len(texts) > MAX_EMBEDDING_TEXTS:
        raise invalid(_("At most %(count)d texts at a time.") % {"count": MAX_EMBEDDING_TEXTS}, param="texts")
    if sum(len(text) for text in texts) > MAX_TEXT_CHARS:
        raise invalid(_("The texts exceed %(count)d characters.") % {"count": MAX_TEXT_CHARS}, param="texts")
    return model, texts


async def embeddings(request: HttpRequest) -> JsonResponse:
    """POST {"model"?, "texts": [...]} -> dimensions and the pairwise cosine similarity matrix."""
    if request.method != "POST":
        return ApiError("Use POST.", status=405, code="method_not_allowed", headers={"Allow": "POST"}).response()
    session_user = await request.auser()
    if not session_user.is_authenticated:
        return ApiError(_("Log in to use the playground."), status=401, code="not_authenticated").response()
    request_id = getattr(request, "request_id", "") or uuid.uuid4().hex
    try:
        async with metered("playground.embeddings", request_id=request_id) as meter:
            user = await sync_to_async(account_selectors.user_with_plan)(user_id=session_user.pk)
            meter.caller = Caller.for_user(user)
            await meter.admit()
            model, texts = _embedding_input(request)
            spec = await inference_services.model_for_caller(model, caller=meter.caller, kind="embedding")
            meter.model = spec.name
            result = await inference_services.embeddings_create(model=spec.name, texts=texts)
            meter.first_token()
            meter.prompt_tokens = result.prompt_tokens
            body = {
                "model": spec.name,
                "texts": texts,
                "dimensions": len(result.vectors[0]) if result.vectors else 0,
                "similarity": services.cosine_similarity_matrix(result.vectors),
                "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
            }
    except LimitExceeded as exc:
        return from_limit_exceeded(exc).response()
    except ApiError as exc:
        return exc.response()
    except Exception:
        logger.exception("playground embeddings failed")
        return ApiError(_("The server had an error."), status=500, type="server_error").response()
    return JsonResponse(body)
