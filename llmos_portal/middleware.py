"""Project-wide middleware. Every class is async-capable so async views (SSE streams) never
pay a sync/async thread hop per request."""

from __future__ import annotations

import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.middleware.locale import LocaleMiddleware as DjangoLocaleMiddleware
from django.utils import translation
from whitenoise.middleware import WhiteNoiseMiddleware

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    if _VALID_REQUEST_ID.match(incoming):
        return incoming
    return f"req_{uuid.uuid4().hex}"


class AsyncCapableMiddleware:
    """Base of the project's middleware: under ASGI it runs on the event loop (`__acall__`), so an
    async view costs no thread hop; under WSGI or a sync stack, `handle` runs instead."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return self.handle(request)

    def handle(self, request):
        raise NotImplementedError

    async def __acall__(self, request):
        raise NotImplementedError


class RequestIdMiddleware(AsyncCapableMiddleware):
    """Give every request an id (the client's X-Request-Id if sane) and echo it on the response."""

    def handle(self, request):
        request.request_id = request_id_for(request)
        response = self.get_response(request)
        response["x-request-id"] = request.request_id
        return response

    async def __acall__(self, request):
        request.request_id = request_id_for(request)
        response = await self.get_response(request)
        response["x-request-id"] = request.request_id
        return response


class ContentSecurityPolicyMiddleware(AsyncCapableMiddleware):
    """A strict Content-Security-Policy on HTML pages (our templates have no inline scripts, handlers
    or style attributes). The admin keeps inline styles; Swagger UI and Redoc, which are built on
    inline scripts, get none. JSON and event streams need no policy."""

    def handle(self, request):
        return _with_policy(request, self.get_response(request))

    async def __acall__(self, request):
        return _with_policy(request, await self.get_response(request))


def _with_policy(request, response):
    policy = settings.CONTENT_SECURITY_POLICY
    if not policy or not response.get("Content-Type", "").startswith("text/html"):
        return response
    path = request.path_info
    if path.startswith(settings.CSP_EXEMPT_PATHS):
        return response
    if path.startswith("/admin/"):
        policy = policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    response.headers.setdefault("Content-Security-Policy", policy)
    return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, taught to stay on the event loop for every request that is not a static file."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None):
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _find(self, request):
        if self.autorefresh:
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        static_file = self._find(request)
        if static_file is None:
            return await self.get_response(request)
        response = await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        if response.streaming and not response.is_async:
            # Django warns when it has to drain a sync file iterator under ASGI; static files are
            # small, so reading their chunks on the loop costs less than a thread hop per chunk.
            response.streaming_content = _as_async(response.streaming_content)
        return response


async def _as_async(chunks):
    for chunk in chunks:
        yield chunk


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, but APPEND_SLASH only redirects GET and HEAD. A redirect would
    lose a POST body (Django raises RuntimeError for it under DEBUG): other methods get the 404 of
    the API they were sent to instead."""

    def should_redirect_with_slash(self, request):
        if request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)


def is_api_path(path: str) -> bool:
    """The programs' APIs: OpenAI's wire contract (/v1) and the portal's JSON API (/api/)."""
    return path == "/v1" or path.startswith(("/v1/", "/api/"))


class LocaleMiddleware(AsyncCapableMiddleware):
    """Django's LocaleMiddleware (the switcher's cookie, else Accept-Language) for the pages; the
    APIs always answer in English, like OpenAI's, whatever the client's Accept-Language. No
    i18n_patterns: URLs carry no language prefix."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.django = DjangoLocaleMiddleware(get_response)  # its request/response logic, not its call

    def _start(self, request) -> bool:
        if is_api_path(request.path_info):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return False
        self.django.process_request(request)
        return True

    def handle(self, request):
        localised = self._start(request)
        response = self.get_response(request)
        return self.django.process_response(request, response) if localised else response

    async def __acall__(self, request):
        localised = self._start(request)
        response = await self.get_response(request)
        return self.django.process_response(request, response) if localised else response
