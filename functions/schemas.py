"""API shapes, matching Open WebUI's FunctionResponse / FunctionModel / FunctionForm."""

from typing import Any

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field


def _epoch(value) -> int:
    return int(value.timestamp()) if value else 0


class FunctionMetaIn(BaseModel):
    """Open WebUI's meta object. A plain pydantic model: a ninja Schema reads attributes
    from any object, so it took `"meta": 7` for an empty meta and dropped extra keys."""

    model_config = ConfigDict(extra="allow")
    description: str | None = None


class FunctionIn(Schema):
    """Open WebUI's FunctionForm: the id is ignored on update."""

    id: str
    name: str = ""
    content: str
    meta: FunctionMetaIn = Field(default_factory=FunctionMetaIn)


class FunctionOut(Schema):
    """FunctionResponse: everything but the source."""

    id: str
    user_id: str
    type: str
    name: str
    meta: dict[str, Any]
    is_active: bool
    is_global: bool
    updated_at: int
    created_at: int

    @staticmethod
    def resolve_user_id(obj) -> str:
        return str(obj.created_by_id or "")

    @staticmethod
    def resolve_updated_at(obj) -> int:
        return _epoch(obj.updated_at)

    @staticmethod
    def resolve_created_at(obj) -> int:
        return _epoch(obj.created_at)


class FunctionModelOut(FunctionOut):
    """FunctionModel: with the source, plus our revision number and last load error."""

    content: str
    revision: int | None
    load_error: str

    @staticmethod
    def resolve_revision(obj) -> int | None:
        return obj.current_revision.number if obj.current_revision else None


class UserBrief(Schema):
    id: str
    name: str
    role: str
    email: str


class FunctionUserOut(FunctionOut):
    user: UserBrief | None

    @staticmethod
    def resolve_user(obj) -> dict | None:
        user = obj.created_by
        if user is None:
            return None
        role = "admin" if user.is_staff else "user"
        name = user.get_full_name() or user.username
        return {"id": str(user.pk), "name": name, "role": role, "email": user.email}


class LoadUrlIn(Schema):
    url: str


class LoadUrlOut(Schema):
    name: str
    content: str


class RevisionOut(Schema):
    number: int
    sha256: str
    author: str | None
    note: str
    created_at: int
    current: bool
    load_result: dict[str, Any]

    @staticmethod
    def resolve_author(obj) -> str | None:
        return obj.author.username if obj.author else None

    @staticmethod
    def resolve_created_at(obj) -> int:
        return _epoch(obj.created_at)

    @staticmethod
    def resolve_current(obj) -> bool:
        return obj.function.current_revision_id == obj.pk


class RollbackIn(Schema):
    # Revision numbers are database integers: a bigger one is no revision at all.
    revision: int = Field(ge=1, le=2**31 - 1)


class ImportIn(Schema):
    functions: list[dict[str, Any]]
    overwrite: bool = False


class HealthOut(Schema):
    function_id: str
    quarantined: bool
    quarantined_at: int | None
    quarantine_reason: str
    last_error: str
    last_failure_at: int | None
    failures: list[dict[str, Any]]


class RequirementsOut(Schema):
    function_id: str
    requirements: list[str]
    # "none" (the server's own packages do), pending, installing, ready or failed.
    status: str
    detail: str
    log: str
