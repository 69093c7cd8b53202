"""The one NinjaAPI: routers from each app, auth, and error translation.

Services raise Django's ValidationError, PermissionDenied or ObjectDoesNotExist;
this is the only place that turns them into HTTP statuses.
"""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI

from chat.api import build_router as build_chat_router
from chat.chats_api import router as chats_router
from chat.files_api import router as files_router
from chat.services.connections import UpstreamError
from fnplatform.accounts.api import auths_router, users_router
from fnplatform.accounts.auth import ApiKeyAuth, session_auth
from functions.api import router as functions_router
from functions.services.plugins import PluginUnavailable
from functions.services.runtime import FilterAbort, HookError
from valves.api import router as valves_router

api = NinjaAPI(
    title="fnplatform API",
    version="1",
    urls_namespace="api",
    auth=[ApiKeyAuth(), session_auth],
    docs_url="/docs",
)
api.add_router("/v1/auths", auths_router)
api.add_router("/v1/users", users_router)
api.add_router("/v1/functions", functions_router)
api.add_router("/v1/functions", valves_router)
api.add_router("/v1/files", files_router)
api.add_router("/v1/chats", chats_router)
api.add_router("", build_chat_router(openwebui=True))

# What OpenAI SDKs call with base_url="http://host/v1".
openai_api = NinjaAPI(
    title="fnplatform OpenAI-compatible API",
    version="1",
    urls_namespace="openai",
    auth=[ApiKeyAuth(), session_auth],
    docs_url=None,
)
openai_api.add_router("", build_chat_router(openwebui=False))


def validation_error_body(exc: ValidationError) -> dict:
    """Return {"detail": str, ...} for a service ValidationError, field errors included."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        # A plugin load error: keep its exact type, message and line.
        return {"detail": exc.messages[0], "error": detail}
    if hasattr(exc, "error_dict"):
        errors = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        summary = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        return {"detail": summary, "errors": errors}
    return {"detail": " ".join(exc.messages)}


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(request, validation_error_body(exc), status=400)


@api.exception_handler(PermissionDenied)
def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    message = str(exc) or "You do not have permission to do that."
    return api.create_response(request, {"detail": message}, status=403)


@api.exception_handler(ObjectDoesNotExist)
def on_not_found(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(Http404)
def on_http404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


def _error_body(
    message: str, kind: str, function_id: str | None = None, events: list | None = None
) -> dict:
    """Both shapes at once: Open WebUI clients read `detail`, OpenAI SDKs read `error`;
    the plugins' events emitted before the failure, when there were any, in `events`
    (as in a completion's answer)."""
    error = {"message": message, "type": kind, "code": None}
    if function_id:
        error["function_id"] = function_id
    return {"detail": message, "error": error} | ({"events": events} if events else {})


def _register_plugin_errors(target: NinjaAPI) -> None:
    """Plugin and upstream failures: the plugin's own message, an honest status."""

    @target.exception_handler(FilterAbort)
    def on_filter_abort(request: HttpRequest, exc: FilterAbort) -> HttpResponse:
        body = _error_body(exc.message, "filter_abort", exc.function_id, exc.events)
        return target.create_response(request, body, status=400)

    @target.exception_handler(HookError)
    def on_hook_error(request: HttpRequest, exc: HookError) -> HttpResponse:
        body = _error_body(exc.described, "function_error", exc.function_id, exc.events)
        return target.create_response(request, body, status=500)

    @target.exception_handler(UpstreamError)
    def on_upstream_error(request: HttpRequest, exc: UpstreamError) -> HttpResponse:
        return target.create_response(
            request, _error_body(f"Upstream model failed: {exc}", "upstream_error"), status=502
        )

    @target.exception_handler(PluginUnavailable)
    def on_unavailable(request: HttpRequest, exc: PluginUnavailable) -> HttpResponse:
        return target.create_response(request, {"detail": exc.messages[0]}, status=503)


def _copy_service_errors(target: NinjaAPI) -> None:
    target.add_exception_handler(
        ValidationError,
        lambda r, e: target.create_response(r, validation_error_body(e), status=400),
    )
    target.add_exception_handler(
        PermissionDenied,
        lambda r, e: target.create_response(
            r, {"detail": str(e) or "You do not have permission to do that."}, status=403
        ),
    )
    target.add_exception_handler(
        ObjectDoesNotExist,
        lambda r, e: target.create_response(r, {"detail": str(e) or "Not found."}, status=404),
    )


_copy_service_errors(openai_api)
for _target in (api, openai_api):
    _register_plugin_errors(_target)
