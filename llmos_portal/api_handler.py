"""The inference hot path: /v1's model endpoints served by a lean ASGI handler.

Django's full handler costs every request a new executor thread (its ThreadSensitiveContext), a
thread hop for each sync-only middleware (sessions, CSRF, auth, messages, ...) and two more for
the request_started / request_finished signals: on a gateway that answers in a millisecond, those
were most of the portal's cost. The OpenAI model endpoints need none of them (API keys, not
cookies), so this handler keeps only what applies to them:

- the request id (x-request-id), the ALLOWED_HOSTS check and the operators' IP rules;
- SecurityMiddleware's HTTPS redirect and headers, and X-Frame-Options, as on every response;
- a client that disconnects cancels the view (a stream is closed), as in Django's handler;
- every error in OpenAI's shape, never a page.

Database work on this path runs through llmos_portal.db.db_sync_to_async, which closes stale or
broken connections before and after each call (what the request signals did). Every other path,
/v1's files and batches included, goes through Django's full handler (`fallback`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.test.signals import setting_changed
from django.urls import Resolver404, ResolverMatch, get_resolver, set_urlconf

from accounts.middleware import aip_refusal
from inference import openai_views
from inference.errors import ApiError, database_unavailable
from llmos_portal.middleware import request_id_for

logger = logging.getLogger(__name__)

# The views this handler serves; any other URL goes through Django's full handler.
HOT_VIEWS: frozenset[Callable] = frozenset(
    {
        openai_views.chat_completions,
        openai_views.completions,
        openai_views.embeddings,
        openai_views.models_list,
        openai_views.model_detail,
    }
)


@functools.lru_cache(maxsize=512)  # resolving walks every URL pattern; the hot paths are few
def _hot_match(path: str) -> ResolverMatch | None:
    if not path.startswith("/v1/"):
        return None
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return None
    return match if match.func in HOT_VIEWS else None


def _unused_get_response(request):  # the middleware below are only asked for their hooks
    raise AssertionError("not called")


class ApiHandler(ASGIHandler):
    """ASGI HTTP application: the hot /v1 views here, everything else through `fallback`."""

    def __init__(self, fallback: Callable):
        BaseHandler.__init__(self)  # no middleware chain: see the module docstring
        self.fallback = fallback
        self.security = SecurityMiddleware(_unused_get_response)
        self.frame_options = XFrameOptionsMiddleware(_unused_get_response)

    @staticmethod
    def serves(path: str) -> bool:
        """True for the paths this handler answers itself."""
        return _hot_match(path) is not None

    async def __call__(self, scope, receive, send):
        match = _hot_match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.fallback(scope, receive, send)
            return
        await self._handle(scope, receive, send, match)

    async def _handle(self, scope, receive, send, match: ResolverMatch) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                error_response = ApiError("The request could not be read.", status=400).response()
                await self.send_response(error_response, send)
                return
            # Same shape as Django's handler: the view runs beside a disconnect listener; whichever
            # ends first cancels the other (a cancelled view bills what it used, see metering).
            respond = asyncio.create_task(self._respond_and_send(request, match, send))
            listen = asyncio.create_task(self.listen_for_disconnect(receive))
            await asyncio.wait((listen, respond), return_when=asyncio.FIRST_COMPLETED)
            for task in (listen, respond):
                if not task.done():
                    task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, RequestAborted):
                    pass
        finally:
            body_file.close()

    async def _respond_and_send(self, request, match: ResolverMatch, send) -> None:
        response = await self._respond(request, match)
        try:
            await self.send_response(response, send)
        finally:
            response.close()

    async def _respond(self, request, match: ResolverMatch) -> HttpResponse:
        set_urlconf(settings.ROOT_URLCONF)
        request.request_id = request_id_for(request)
        request.resolver_match = match
        try:
            request.get_host()  # ALLOWED_HOSTS
            response = await aip_refusal(request) or self.security.process_request(request)
            if response is None:
                response = await match.func(request, *match.args, **match.kwargs)
        except DisallowedHost:
            response = ApiError("Invalid Host header.", status=400, code="invalid_host").response()
        except (OperationalError, InterfaceError) as exc:  # the IP rules' first read; views map their own
            logger.error("database unavailable while serving %s: %s", request.path, exc)
            response = database_unavailable().response()
        except RawPostDataException:
            response = ApiError("The request body could not be read.", status=400).response()
        except Exception:  # the views answer their own errors; this is the handler's last resort
            logger.exception("unhandled error in %s", request.path)
            response = ApiError(
                "The server had an error while processing your request.", status=500, type="server_error"
            ).response()
        response = self.frame_options.process_response(request, self.security.process_response(request, response))
        response["x-request-id"] = request.request_id
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        return response


@receiver(setting_changed)
def _forget_routes(*, setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _hot_match.cache_clear()
