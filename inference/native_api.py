"""Native task endpoints (/api/v1/generate, /ask, /classify) for people who don't want the
OpenAI format. Async DRF views (adrf), authenticated with API keys, in the OpenAPI schema."""

from __future__ import annotations

from adrf.views import APIView
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from inference import services, tasks
from inference.errors import ApiError
from inference.metering import RequestMeter
from inference.serializers import (
    AskResponseSerializer,
    AskSerializer,
    ClassifyResponseSerializer,
    ClassifySerializer,
    GenerateResponseSerializer,
    GenerateSerializer,
)


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
    """Base of the task endpoints: key auth, the caller's limits, usage, then `run()`."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    request_serializer = None
    model_kind = "chat"
    default_model_setting = "DEFAULT_CHAT_MODEL"
    endpoint = ""

    async def run(self, data: dict, model: str, caller: services.Caller) -> dict:
        raise NotImplementedError

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value  # Retry-After and x-ratelimit-* on 429s
        return response

    async def post(self, request):
        meter = RequestMeter(endpoint=self.endpoint, request_id=getattr(request, "request_id", ""))
        meter.caller = services.Caller.for_key(request.auth)
        try:
            await meter.admit()
            serializer = self.request_serializer(data=request.data)
            if not serializer.is_valid():
                await meter.finish(status=400, error_code="invalid_request")
                raise ValidationError(serializer.errors)
            data = serializer.validated_data
            meter.model = data.get("model") or getattr(settings, self.default_model_setting)
            spec = await services.resolve_model(meter.model, caller=meter.caller, kind=self.model_kind)
            result = await self.run(data, spec.name, meter.caller)
        except ApiError as exc:
            await meter.finish(status=exc.status, error_code=exc.code or exc.type)
            raise TaskError(exc, headers=meter.rate_limit_headers) from exc
        meter.prompt_tokens = result.get("prompt_tokens", 0)
        meter.completion_tokens = result.get("completion_tokens", 0)
        await meter.finish(status=200)
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

    async def run(self, data, model, caller):
        max_tokens = services.sampling_params({"max_tokens": data["max_length"]}, plan=caller.plan).max_tokens
        return await tasks.generate(
            model=model, prompt=data["prompt"], max_tokens=max_tokens, temperature=data["temperature"], raw=data["raw"]
        )


class AskView(TaskView):
    request_serializer = AskSerializer
    endpoint = "ask"

    @extend_schema(
        request=AskSerializer,
        responses={200: AskResponseSerializer, **ERRORS},
        summary="Answer a question, optionally from a given context",
        tags=["tasks"],
    )
    async def post(self, request):
        return await super().post(request)

    async def run(self, data, model, caller):
        max_tokens = services.sampling_params({"max_tokens": data["max_length"]}, plan=caller.plan).max_tokens
        return await tasks.ask(
            model=model, question=data["question"], context=data.get("context", ""), max_tokens=max_tokens
        )


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

    async def run(self, data, model, caller):
        return await tasks.classify(
            model=model,
            text=data["text"],
            labels=data["labels"],
            hypothesis_template=data["hypothesis_template"],
            multi_label=data["multi_label"],
        )
