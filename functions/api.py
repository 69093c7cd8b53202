"""Open WebUI-compatible function management under /api/v1/functions/.

Each operation translates the request, calls one service or selector, and
returns its result; fnplatform.api maps service errors to HTTP statuses.
"""

from django.http import HttpRequest
from ninja import Router

from fnplatform.permissions import require_perm
from functions import selectors
from functions.models import FunctionHealth
from functions.schemas import (
    FunctionIn,
    FunctionModelOut,
    FunctionOut,
    FunctionUserOut,
    HealthOut,
    ImportIn,
    LoadUrlIn,
    LoadUrlOut,
    RequirementsOut,
    RevisionOut,
    RollbackIn,
)
from functions.services import environments, transfer
from functions.services import functions as services
from functions.services.health import health_release

router = Router(tags=["functions"])

VIEW = "functions.view_function"


def _staff_get(request: HttpRequest, id: str):
    """Check the view permission first, so a caller without it cannot probe which ids
    exist; writes are then checked for their own permission by the service."""
    require_perm(request.auth, VIEW)
    return selectors.function_get(id=id)


@router.get("/", response=list[FunctionOut])
def list_functions(request: HttpRequest):
    return selectors.function_list_for(user=request.auth)


@router.get("/list", response=list[FunctionUserOut])
def list_functions_with_users(request: HttpRequest):
    require_perm(request.auth, VIEW)
    return selectors.function_list()


@router.get("/export", response=list[dict])
def export_functions(request: HttpRequest, include_valves: bool = False):
    return transfer.function_export_items(
        user=request.auth, functions=selectors.function_list(), include_valves=include_valves
    )


@router.post("/load/url", response=LoadUrlOut)
def load_function_from_url(request: HttpRequest, payload: LoadUrlIn):
    fetched = transfer.fetch_source(user=request.auth, url=payload.url)
    return {"name": fetched.name, "content": fetched.content}


@router.post("/create", response=FunctionOut)
def create_function(request: HttpRequest, payload: FunctionIn):
    return services.function_create(
        user=request.auth,
        id=payload.id,
        name=payload.name,
        content=payload.content,
        meta=payload.meta.model_dump(exclude_none=True),
    )


@router.post("/import", response=list[FunctionOut])
def import_functions(request: HttpRequest, payload: ImportIn):
    return transfer.function_import_items(
        user=request.auth, items=payload.functions, overwrite=payload.overwrite
    )


@router.get("/id/{id}", response=FunctionModelOut)
def get_function(request: HttpRequest, id: str):
    return _staff_get(request, id)


@router.post("/id/{id}/update", response=FunctionModelOut)
def update_function(request: HttpRequest, id: str, payload: FunctionIn):
    return services.function_update(
        user=request.auth,
        function=_staff_get(request, id),
        name=payload.name or None,
        content=payload.content,
        meta=payload.meta.model_dump(exclude_none=True),
    )


@router.post("/id/{id}/toggle", response=FunctionModelOut)
def toggle_function(request: HttpRequest, id: str):
    function = _staff_get(request, id)
    return services.function_set_active(
        user=request.auth, function=function, active=not function.is_active
    )


@router.post("/id/{id}/toggle/global", response=FunctionModelOut)
def toggle_function_global(request: HttpRequest, id: str):
    function = _staff_get(request, id)
    return services.function_set_global(
        user=request.auth, function=function, is_global=not function.is_global
    )


@router.delete("/id/{id}/delete", response=bool)
def delete_function(request: HttpRequest, id: str):
    services.function_delete(user=request.auth, function=_staff_get(request, id))
    return True


@router.get("/id/{id}/revisions", response=list[RevisionOut])
def list_function_revisions(request: HttpRequest, id: str):
    return selectors.revision_list(function=_staff_get(request, id)).select_related("function")


@router.post("/id/{id}/rollback", response=FunctionModelOut)
def rollback_function(request: HttpRequest, id: str, payload: RollbackIn):
    function = _staff_get(request, id)
    revision = selectors.revision_get(function=function, number=payload.revision)
    return services.function_rollback(user=request.auth, function=function, revision=revision)


def _health_out(function) -> dict:
    health = FunctionHealth.objects.filter(function=function).first()
    epoch = services.epoch
    return {
        "function_id": function.id,
        "quarantined": bool(health and health.is_quarantined),
        "quarantined_at": epoch(health.quarantined_at)
        if health and health.quarantined_at
        else None,
        "quarantine_reason": health.quarantine_reason if health else "",
        "last_error": health.last_error if health else "",
        "last_failure_at": epoch(health.last_failure_at)
        if health and health.last_failure_at
        else None,
        "failures": health.failures if health else [],
    }


@router.get("/id/{id}/health", response=HealthOut)
def get_function_health(request: HttpRequest, id: str):
    return _health_out(_staff_get(request, id))


@router.post("/id/{id}/health/release", response=HealthOut)
def release_function(request: HttpRequest, id: str):
    function = _staff_get(request, id)
    health_release(user=request.auth, function=function)
    return _health_out(function)


def _requirements_out(function) -> dict:
    env = function.environment
    return {
        "function_id": function.id,
        "requirements": env.requirements if env else [],
        "status": env.status if env else "none",
        "detail": environments.status_text(env),
        "log": env.log if env else "",
    }


@router.get("/id/{id}/requirements", response=RequirementsOut)
def get_function_requirements(request: HttpRequest, id: str):
    """Install status and pip log of the function's requirement environment."""
    return _requirements_out(_staff_get(request, id))


@router.post("/id/{id}/requirements/reinstall", response=RequirementsOut)
def reinstall_function_requirements(request: HttpRequest, id: str):
    function = _staff_get(request, id)
    if function.environment is not None:
        environments.environment_reinstall(user=request.auth, environment=function.environment)
        function.environment.refresh_from_db()
    return _requirements_out(function)
