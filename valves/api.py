"""Open WebUI-compatible valve endpoints under /api/v1/functions/id/{id}/valves.

Global valves are for staff with the admin's valves permissions; user valves are
for any signed-in user, on functions that user may use. Each operation calls one
service; fnplatform.api turns service errors into 400/403/404.
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router

from fnplatform.permissions import require_perm
from functions import selectors
from functions.models import Function
from valves import services
from valves.schemas import ErrorOut, ValvesIn, ValvesOut

router = Router(tags=["valves"])

ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut}


def _staff_get(request: HttpRequest, id: str) -> Function:
    """Check the view permission first, so a caller without it cannot probe which ids
    exist; updates are then checked for the change permission by the service."""
    require_perm(request.auth, "valves.view_functionvalves")
    return selectors.function_get(id=id)


def _usable_get(request: HttpRequest, id: str) -> Function:
    function = selectors.function_get(id=id)
    if not selectors.function_usable_by(user=request.auth, function=function):
        raise PermissionDenied("You cannot use this function.")
    return function


def _public(state: services.ValvesState) -> ValvesOut:
    return state.values if state.stored else None


@router.get("/id/{id}/valves", response={200: ValvesOut, **ERRORS})
def get_function_valves(request: HttpRequest, id: str):
    return _public(services.valves_state_global(function=_staff_get(request, id)))


@router.get("/id/{id}/valves/spec", response={200: ValvesOut, **ERRORS})
def get_function_valves_spec(request: HttpRequest, id: str):
    function = _staff_get(request, id)
    return services.valves_schema(function=function, viewer=request.auth)


@router.post("/id/{id}/valves/update", response={200: ValvesOut, **ERRORS})
def update_function_valves(request: HttpRequest, id: str, payload: ValvesIn):
    state = services.valves_update_global(
        user=request.auth,
        function=_staff_get(request, id),
        values=payload.values(),
        clear=payload.clear,
    )
    return state.values


@router.get("/id/{id}/valves/user", response={200: ValvesOut, **ERRORS})
def get_function_user_valves(request: HttpRequest, id: str):
    function = _usable_get(request, id)
    return _public(services.valves_state_user(user=request.auth, function=function))


@router.get("/id/{id}/valves/user/spec", response={200: ValvesOut, **ERRORS})
def get_function_user_valves_spec(request: HttpRequest, id: str):
    function = _usable_get(request, id)
    return services.valves_schema(function=function, user=True, viewer=request.auth)


@router.post("/id/{id}/valves/user/update", response={200: ValvesOut, **ERRORS})
def update_function_user_valves(request: HttpRequest, id: str, payload: ValvesIn):
    state = services.valves_update_user(
        user=request.auth,
        function=_usable_get(request, id),
        values=payload.values(),
        clear=payload.clear,
    )
    return state.values
