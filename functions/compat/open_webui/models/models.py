"""Mirrors open_webui.models.models: `Models`, `ModelModel` and friends, read-only.

Upstream's table holds "workspace" presets wrapping base models; fnplatform has
none. What it has are pipes (a plain active pipe is a model) and per-model
settings rows (functions.models.ModelSettings), so those are listed, as base
models (`base_model_id` None). `get_models()` lists them too, although upstream
lists only presets there: plugins call it to find the models on offer, and an
always-empty list would tell them there are none. Manifold entries are not
listed, because that means running plugin code; the chat API lists them.

Scoped: only models the calling user may use (per ModelSettings' allow-lists);
everything for an admin call; nothing outside plugin calls. Writing is refused:
models are configured in the admin.
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from pydantic import BaseModel, ConfigDict

from functions.services.host import caller, caller_is_admin, may_read_user

from .._dual import dual
from ._owned import caller_pk, epoch, user_id_of
from .users import UserModel

WRITE_REFUSED = "Changing models is not allowed from plugin code; use the admin."


class ModelParams(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    profile_image_url: str | None = "/static/favicon.png"
    description: str | None = None
    capabilities: dict | None = None


class ModelModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    base_model_id: str | None = None
    name: str
    params: ModelParams
    meta: ModelMeta
    access_control: dict | None = None
    is_active: bool
    updated_at: int
    created_at: int


class ModelUserResponse(ModelModel):
    user: UserModel | None = None


class ModelResponse(ModelModel):
    pass


class ModelForm(BaseModel):
    id: str
    base_model_id: str | None = None
    name: str
    meta: ModelMeta
    params: ModelParams
    access_control: dict | None = None
    is_active: bool = True


def _pipe_model(function) -> ModelUserResponse:
    return ModelUserResponse(
        id=function.id,
        user_id=str(function.created_by_id or ""),
        name=function.name,
        params=ModelParams(),
        meta=ModelMeta(description=function.description or None),
        is_active=function.is_active,
        updated_at=epoch(function.updated_at),
        created_at=epoch(function.created_at),
    )


def _settings_model(row, pipes: dict) -> ModelUserResponse:
    # A settings row for a pipe (or one of its manifold entries) follows that pipe.
    function = pipes.get(row.model_id.partition(".")[0])
    return ModelUserResponse(
        id=row.model_id,
        user_id=str(function.created_by_id or "") if function else "",
        name=function.name if function and function.id == row.model_id else row.model_id,
        params=ModelParams(),
        meta=ModelMeta(description=(function.description or None) if function else None),
        is_active=function.is_active if function else True,
        updated_at=epoch(row.updated_at),
        created_at=epoch(row.updated_at),
    )


def _is_plain(function) -> bool:
    report = function.current_revision.load_result if function.current_revision else {}
    return not report.get("manifold")


def _usable_by_caller() -> Callable[[str, Any], bool]:
    """A test (model id, its settings row or None) -> may the calling user use it."""
    from functions.services.plugins import model_allowed

    if caller() is None:
        return lambda model_id, row: False
    if caller_is_admin():
        return lambda model_id, row: True
    user = get_user_model().objects.filter(pk=caller_pk(), is_active=True).first()
    if user is None:
        return lambda model_id, row: False
    # No settings row means no restriction (the default: everyone may use it).
    return lambda model_id, row: (
        row is None or model_allowed(user=user, model_id=model_id, settings=row)
    )


def all_models() -> list[ModelUserResponse]:
    """Plain pipes, then settings rows for other models, that the caller may use."""
    from functions.models import Function, FunctionType, ModelSettings

    pipes = {
        f.id: f
        for f in Function.objects.filter(type=FunctionType.PIPE).select_related("current_revision")
    }
    rows = {
        r.model_id: r
        for r in ModelSettings.objects.prefetch_related("allowed_users", "allowed_groups")
    }
    listed = [_pipe_model(f) for f in pipes.values() if f.is_active and _is_plain(f)]
    seen = {m.id for m in listed}
    listed += [_settings_model(r, pipes) for mid, r in rows.items() if mid not in seen]
    usable = _usable_by_caller()
    return [m for m in listed if usable(m.id, rows.get(m.id))]


class ModelsTable:
    @dual
    def get_all_models(self, db: Any = None) -> list[ModelUserResponse]:
        return all_models()

    @dual
    def get_models(self, db: Any = None) -> list[ModelUserResponse]:
        return all_models()

    @dual
    def get_base_models(self, db: Any = None) -> list[ModelUserResponse]:
        return all_models()

    @dual
    def get_models_by_user_id(
        self, user_id: Any, permission: str = "write", db: Any = None
    ) -> list[ModelUserResponse]:
        """The caller's models when `user_id` is the caller (any user's for an admin call)."""
        return all_models() if may_read_user(user_id_of(user_id)) else []

    @dual
    def get_model_by_id(self, id: str, db: Any = None) -> ModelUserResponse | None:
        return next((m for m in all_models() if m.id == id), None)

    def insert_new_model(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED)

    def update_model_by_id(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED)

    def delete_model_by_id(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED)


Models = ModelsTable()
