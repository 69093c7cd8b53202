"""Mirrors open_webui.models.functions: `Functions`, `FunctionModel`, read-only.

Plugin code may look functions up, but never author them: every write
(insert, update, valves, delete) raises PermissionError, because a plugin that
installs code would bypass the admin's review and revisions. Scoped: a call made
for a user sees active functions, a call made for an admin all of them; whoever the
call is for, a plugin reads only its own function's source and stored valves (minus
secrets), never another function's: one function's code cannot reach another's.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from functions.services.host import caller, caller_is_admin, calling_function

from .._dual import dual
from ._owned import epoch

WRITE_REFUSED = "{} is not allowed from plugin code; use the admin."


class FunctionMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    description: str | None = None
    manifest: dict | None = {}


class FunctionModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    name: str
    type: str
    # Only the calling function's own source; None for every other function.
    content: str | None = None
    meta: FunctionMeta
    is_active: bool = False
    is_global: bool = False
    updated_at: int
    created_at: int


class FunctionResponse(BaseModel):
    id: str
    user_id: str
    type: str
    name: str
    meta: FunctionMeta
    is_active: bool
    is_global: bool
    updated_at: int
    created_at: int


class FunctionForm(BaseModel):
    id: str
    name: str
    content: str
    meta: FunctionMeta


def _visible(active_only: bool = False):
    from functions.models import Function

    rows = Function.objects.order_by("id")
    if caller() is None:
        return rows.none()
    if active_only or not caller_is_admin():
        rows = rows.filter(is_active=True)
    return rows


def to_function_model(row) -> FunctionModel:
    return FunctionModel(
        id=row.id,
        user_id=str(row.created_by_id or ""),
        name=row.name,
        type=row.type,
        content=row.content if _own(row.id) else None,
        meta=FunctionMeta(**(row.meta or {})),
        is_active=row.is_active,
        is_global=row.is_global,
        updated_at=epoch(row.updated_at),
        created_at=epoch(row.created_at),
    )


def _own(function_id: str) -> bool:
    return calling_function() is not None and calling_function() == function_id


def _public_valves(function) -> dict:
    from valves.services import valves_public_global

    # Secret fields never reach plugin code.
    return valves_public_global(function=function) or {}


def _refuse(action: str):
    def refused(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED.format(action))

    refused.__name__ = action
    return refused


class FunctionsTable:
    @dual
    def get_function_by_id(self, id: str, db: Any = None) -> FunctionModel | None:
        row = _visible().filter(pk=id).first()
        return to_function_model(row) if row else None

    @dual
    def get_functions(
        self, active_only: bool = False, include_valves: bool = False, db: Any = None
    ) -> list[FunctionModel]:
        return [to_function_model(row) for row in _visible(active_only)]

    @dual
    def get_functions_by_type(
        self, type: str, active_only: bool = False, db: Any = None
    ) -> list[FunctionModel]:
        return [to_function_model(row) for row in _visible(active_only).filter(type=type)]

    @dual
    def get_global_filter_functions(self, db: Any = None) -> list[FunctionModel]:
        rows = _visible(True).filter(type="filter", is_global=True)
        return [to_function_model(row) for row in rows]

    @dual
    def get_global_action_functions(self, db: Any = None) -> list[FunctionModel]:
        rows = _visible(True).filter(type="action", is_global=True)
        return [to_function_model(row) for row in rows]

    @dual
    def get_function_valves_by_id(self, id: str, db: Any = None) -> dict | None:
        """The calling function's own stored global valves, without secret fields."""
        if not _own(id):
            return None
        row = _visible().filter(pk=id).first()
        return _public_valves(row) if row else None

    insert_new_function = _refuse("insert_new_function")
    update_function_by_id = _refuse("update_function_by_id")
    update_function_valves_by_id = _refuse("update_function_valves_by_id")
    update_user_valves_by_id_and_user_id = _refuse("update_user_valves_by_id_and_user_id")
    delete_function_by_id = _refuse("delete_function_by_id")


Functions = FunctionsTable()
