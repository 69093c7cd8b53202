"""Refuse request bodies that hold a lone surrogate, before any view, service or plugin.

A lone surrogate ("\\ud800" in JSON, or a form posted in UTF-7) is a Python str that
cannot be encoded as UTF-8. Let through, it fails far from its cause: in a plugin's
worker pipe (recorded against the function as if the plugin had failed), in the
database, or, stored in a user valve, in every later call of that user. So it is
refused here, once for every door: JSON bodies (the API, however the client labels
them) and form posts (the admin, the valves pages), with a 400 naming the field.

This runs before URL routing, where fnplatform.api's exception handlers cannot see
it, so it writes the response itself, in the shape those handlers use.
"""

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import RequestDataTooBig, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware import clickjacking, common, csp, csrf, security

from fnplatform.api import validation_error_body

SURROGATE = re.compile("[\ud800-\udfff]")
# How a body can carry one: as a JSON escape (\ud800 through \udfff), as the bytes
# UTF-8 would give it (which json.loads reads, with "surrogatepass"), or in UTF-16 or
# UTF-32 (json.loads reads those too; their ASCII has NULs). A body with none of these
# (nearly all of them) is not parsed here at all.
MAY_HOLD_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}|\xed[\xa0-\xbf]|\x00")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MESSAGE = "Contains a lone surrogate (an unpaired UTF-16 half), which is not valid text."


def printable(text: str) -> str:
    """The text with any surrogate shown as its escape, safe to put in a response."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def surrogate_paths(data: Any, path: str = "") -> Iterator[str]:
    """Yield the dotted path ("messages.0.content") of every string holding a surrogate.

    Keys count too: a key with a surrogate is reported as its own path.
    """
    if isinstance(data, str):
        if SURROGATE.search(data):
            yield path or "body"
    elif isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{printable(str(key))}" if path else printable(str(key))
            if isinstance(key, str) and SURROGATE.search(key):
                yield child
            yield from surrogate_paths(value, child)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from surrogate_paths(value, f"{path}.{index}" if path else str(index))


def body_surrogate_paths(request: HttpRequest) -> list[str]:
    """The fields of the request's body that hold a lone surrogate (usually none)."""
    if request.method not in WRITE_METHODS:
        return []
    try:
        if request.content_type in FORM_TYPES:
            return [
                path
                for key, values in request.POST.lists()
                for path in surrogate_paths({key: values[0] if len(values) == 1 else values})
            ]
        raw = request.body
    except (RequestDataTooBig, MultiPartParserError):
        return []  # the view refuses such a request in its usual way
    if not MAY_HOLD_SURROGATE.search(raw):
        return []
    try:
        return list(surrogate_paths(json.loads(raw)))
    except (ValueError, RecursionError):
        return []  # not JSON, or nested past reason: the view's parser refuses it


def refusal(request: HttpRequest, paths: list[str]) -> HttpResponse:
    error = ValidationError({path: [MESSAGE] for path in paths})
    if request.content_type in FORM_TYPES:
        lines = [f"{path}: {MESSAGE}" for path in paths]
        return HttpResponseBadRequest("\n".join(lines), content_type="text/plain")
    return JsonResponse(validation_error_body(error), status=400)


class RefuseLoneSurrogatesMiddleware:
    """Answer 400 to a body holding a lone surrogate; pass everything else on."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self.__acall__(request)
        paths = body_surrogate_paths(request)
        return refusal(request, paths) if paths else self.get_response(request)

    async def __acall__(self, request: HttpRequest):
        # The ASGI handler has read the whole body before the request reaches us, so
        # reading it here does not block on the network.
        paths = body_surrogate_paths(request)
        return refusal(request, paths) if paths else await self.get_response(request)


class StaticFilesMiddleware:
    """WhiteNoise's static files, without its cost to every other request under ASGI.

    WhiteNoiseMiddleware is sync-only, so Django would run the whole middleware chain
    of every request, API calls included, in a thread and hop back to the loop for the
    async views. This wrapper is async-capable: a static path is looked up and served
    by WhiteNoise (in a thread: it opens the file); any other request goes straight on.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        from whitenoise.middleware import WhiteNoiseMiddleware

        self.get_response = get_response
        self.whitenoise = WhiteNoiseMiddleware(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return self.whitenoise(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if self.whitenoise.autorefresh:
            static_file = await sync_to_async(self.whitenoise.find_file)(request.path_info)
        else:
            static_file = self.whitenoise.files.get(request.path_info)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.whitenoise.serve)(static_file, request)


# Django's own middleware on the event loop.
#
# MiddlewareMixin.__acall__ runs every process_request and process_response in a
# thread (sync_to_async) whatever it does: Django's seven would cost an async request
# thirteen thread hops before and after the view. The hooks below do no I/O in the
# cases they run on the loop (they set headers, read cookies, make lazy objects), so
# these subclasses call them there; the cases that may touch the database or parse a
# posted body still take their thread hop.


class _OnLoop:
    """Mixin for a MiddlewareMixin middleware whose hooks do no I/O: run them on the loop."""

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = await self.aprocess_response(request, response)
        return response

    async def aprocess_response(self, request: HttpRequest, response: HttpResponse):
        return self.process_response(request, response)


class SecurityMiddleware(_OnLoop, security.SecurityMiddleware):
    """Django's, on the loop: it sets headers and may redirect to HTTPS."""


class CommonMiddleware(_OnLoop, common.CommonMiddleware):
    """Django's, on the loop: user-agent refusal, slash redirects (URL resolving, no I/O)
    and Content-Length."""


class XFrameOptionsMiddleware(_OnLoop, clickjacking.XFrameOptionsMiddleware):
    """Django's, on the loop: one header."""


class AuthenticationMiddleware(_OnLoop, auth_middleware.AuthenticationMiddleware):
    """Django's, on the loop: request.user and request.auser are lazy; the user is loaded
    only where it is asked for (in a thread, or awaited)."""


class ContentSecurityPolicyMiddleware(_OnLoop, csp.ContentSecurityPolicyMiddleware):
    """Django's, on the loop: a lazy nonce per request and one header (SECURE_CSP)."""


class SessionMiddleware(_OnLoop, sessions.SessionMiddleware):
    """Django's, on the loop, except saving a modified session (a database write)."""

    async def aprocess_response(self, request: HttpRequest, response: HttpResponse):
        session = getattr(request, "session", None)
        saves = session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)
        if saves and not session.is_empty():
            return await sync_to_async(self.process_response)(request, response)
        return self.process_response(request, response)


class MessageMiddleware(_OnLoop, messages_middleware.MessageMiddleware):
    """Django's, on the loop, except storing messages (which may load the session)."""

    async def aprocess_response(self, request: HttpRequest, response: HttpResponse):
        storage = getattr(request, "_messages", None)
        if storage is not None and (storage.used or storage.added_new):
            return await sync_to_async(self.process_response)(request, response)
        return self.process_response(request, response)


class CsrfViewMiddleware(_OnLoop, csrf.CsrfViewMiddleware):
    """Django's, on the loop (the token is in a cookie, CSRF_USE_SESSIONS being off),
    except checking an unsafe request to a protected view, which may parse a posted
    form: that stays in a thread, where a large upload cannot hold up the loop."""

    def __init__(self, get_response: Callable) -> None:
        super().__init__(get_response)
        if self.async_mode:
            # The handler picks up process_view from the instance, async here.
            self.process_view = self._aprocess_view

    async def _aprocess_view(self, request, callback, callback_args, callback_kwargs):
        view = super().process_view
        if request.method in SAFE_METHODS or getattr(callback, "csrf_exempt", False):
            return view(request, callback, callback_args, callback_kwargs)
        return await sync_to_async(view)(request, callback, callback_args, callback_kwargs)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
