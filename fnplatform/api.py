"""The one NinjaAPI: routers from each app, auth, and error translation.

Services raise Django's ValidationError, PermissionDenied or ObjectDoesNotExist;
this is the only place that turns them into HTTP statuses.
"""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.security import django_auth

from fnplatform.accounts.auth import ApiKeyAuth
from functions.api import router as functions_router
from valves.api import router as valves_router

api = NinjaAPI(
    title="fnplatform API",
    version="1",
    urls_namespace="api",
    auth=[ApiKeyAuth(), django_auth],
    docs_url="/docs",
)
api.add_router("/v1/functions", functions_router)
api.add_router("/v1/functions", valves_router)


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
