"""Native task endpoints (/api/v1/generate, /ask, /classify) for people who don't want the
OpenAI format. Async DRF views (adrf), authenticated with API keys, in the OpenAPI schema."""

from __future__ import annotations

import logging

from adrf.views import APIView
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from accounts.authentication import ApiKeyAuthentication
from accounts.caller import Caller
from inference import services, tasks
from inference.errors import ApiError, database_unavailable, from_limit_exceeded
from inference.serializers import (
    AskResponseSerializer,
    AskSerializer,
    ClassifyResponseSerializer,
    ClassifySerializer,
    GenerateResponseSerializer,
    GenerateSerializer,
)
from knowledge import retrieval
from knowledge import selectors as knowledge_selectors
from usage.metering import LimitExceeded, RequestMeter, metered

logger = logging.getLogger(__name__)


class TaskError(APIException):
    """An ApiError in DRF's shape ({"detail": ...}), keeping its status and headers."""

    def __init__(self, error: ApiError, headers: dict[str, str]):
        super().__init__(detail=error.message, code=error.code or error.type)
        self.status_code = error.status
        self.headers = {**headers, **error.headers}


ERRORS = {
    400: OpenApiResponse(description="Invalid input"),
    401: OpenApiResponse(description="Missing or invalid API key"),
    403: OpenApiResponse(description="The key may not use this model or comes from a disallowed IP"),
    404: OpenApiResponse(description="Unknown model"),
    503: OpenApiResponse(description="Model overloaded or not loaded"),
}


class TaskView(APIView):
    """Base of the task endpoints: key auth, then `run()` inside `metered()` (limits and usage)."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    request_serializer: type[Serializer]
    model_kind = "chat"
    default_model_setting = "DEFAULT_CHAT_MODEL"
    endpoint = ""

    async def run(self, data: dict, model: str, meter: RequestMeter) -> dict:
        """The task's answer; `meter` has the caller and refuses prompts over the plan's cap."""
        raise NotImplementedError

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value  # Retry-After and x-ratelimit-* on 429s
        return response

    async def post(self, request):
        meter: RequestMeter | None = None
        try:
            async with metered(self.endpoint, request_id=getattr(request, "request_id", "")) as meter:
                meter.caller = Caller.for_key(request.auth)
                await meter.admit()
                serializer = self.request_serializer(data=request.data)
                if not serializer.is_valid():
                    raise ValidationError(serializer.errors)
                data = serializer.validated_data
                requested = data.get("model") or getattr(settings, self.default_model_setting)
                spec = await services.model_for_caller(requested, caller=meter.caller, kind=self.model_kind)
                meter.model = spec.name  # only names that exist become metric labels
                result = await self.run(data, spec.name, meter)
                meter.prompt_tokens = result.get("prompt_tokens", 0)
                meter.completion_tokens = result.get("completion_tokens", 0)
        except LimitExceeded as exc:
            raise TaskError(from_limit_exceeded(exc), headers={}) from exc
        except ApiError as exc:
            raise TaskError(exc, headers=meter.rate_limit_headers if meter else {}) from exc
        except APIException:
            raise
        except RequestDataTooBig as exc:
            too_big = ApiError("The request body is too large.", code="request_too_large")
            raise TaskError(too_big, headers=meter.rate_limit_headers if meter else {}) from exc
        except (OperationalError, InterfaceError) as exc:  # the database is unreachable: 503
            logger.error("database unavailable while serving %s: %s", request.path, exc)
            raise TaskError(database_unavailable(), headers={}) from exc
        except Exception as exc:
            logger.exception("unhandled error in %s", request.path)
            raise APIException("The server had an error while processing your request.") from exc
        return Response(result, headers=meter.rate_limit_headers)


class GenerateView(TaskView):
    request_serializer = GenerateSerializer
    endpoint = "generate"

    @extend_schema(
        request=GenerateSerializer,
        responses={200: GenerateResponseSerializer, **ERRORS},
        summary="Generate text from a prompt",
        tags=["tasks"],
    )
    async def post(self, request):
        return await super().post(request)

    async def run(self, data, model, meter):
        max_tokens = services.sampling_params({"max_tokens": data["max_length"]}, plan=meter.caller.plan).max_tokens
        return await tasks.generate(
            model=model,
            prompt=data["prompt"],
            max_tokens=max_tokens,
            temperature=data["temperature"],
            raw=data["raw"],
            check_prompt=meter.check_prompt_tokens,
        )


class AskView(TaskView):
    request_serializer = AskSerializer
    endpoint = "ask"

    @extend_schema(
        request=AskSerializer,
        responses={200: AskResponseSerializer, **ERRORS},
        summary="Answer a question, optionally from a given context or from a knowledge base",
        description=(
            "With `knowledge_base`, the question is embedded with the base's model, its most relevant passages "
            "are found, and the answer is made from them and returned with `citations`. When no passage is "
            "relevant, `found` is false and the answer says so (nothing is generated)."
        ),
        tags=["tasks"],
    )
    async def post(self, request):
        return await super().post(request)

    async def run(self, data, model, meter):
        max_tokens = services.sampling_params({"max_tokens": data["max_length"]}, plan=meter.caller.plan).max_tokens
        if data.get("knowledge_base"):
            return await self._from_knowledge_base(data, model, meter, max_tokens)
        return await tasks.ask(
            model=model,
            question=data["question"],
            context=data.get("context", ""),
            max_tokens=max_tokens,
            check_prompt=meter.check_prompt_tokens,
        )

    async def _from_knowledge_base(self, data, model, meter, max_tokens) -> dict:
        base = await sync_to_async(knowledge_selectors.knowledge_base_for_user)(
            user=meter.caller.user, knowledge_base_id=data["knowledge_base"]
        )
        if base is None:
            raise ApiError(
                f"No such knowledge base: {data['knowledge_base']}",
                status=404,
                param="knowledge_base",
                code="knowledge_base_not_found",
            )
        grounded = await retrieval.ask(
            knowledge_base=base,
            caller=meter.caller,
            model=model,
            question=data["question"],
            max_tokens=max_tokens,
            check_prompt=meter.check_prompt_tokens,
            request_id=meter.request_id,
            context=data.get("context", ""),
        )
        return {
            "answer": grounded.answer,
            "model": model,
            "found": grounded.found,
            "citations": grounded.citations,
            "prompt_tokens": grounded.prompt_tokens,
            "completion_tokens": grounded.completion_tokens,
        }


class ClassifyView(TaskView):
    request_serializer = ClassifySerializer
    model_kind = "embedding"
    default_model_setting = "DEFAULT_EMBEDDING_MODEL"
    endpoint = "classify"

    @extend_schema(
        request=ClassifySerializer,
        responses={200: ClassifyResponseSerializer, **ERRORS},
        summary="Zero-shot classification of a text into candidate labels",
        description=(
            "Scores each label by the embedding similarity between the text and a hypothesis sentence "
            "for the label (all-MiniLM-L6-v2 by default). Single-label scores sum to 1."
        ),
        tags=["tasks"],
    )
    async def post(self, request):
        return await super().post(request)

    async def run(self, data, model, meter):
        return await tasks.classify(
            model=model,
            text=data["text"],
            labels=data["labels"],
            hypothesis_template=data["hypothesis_template"],
            multi_label=data["multi_label"],
        )
