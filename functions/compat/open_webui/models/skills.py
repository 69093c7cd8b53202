"""Mirrors open_webui.models.skills: `Skills`, `SkillModel`, `SkillForm`, `SkillMeta`.

Upstream's skills are instruction documents (a SKILL.md and its files) users share
and models load on demand. fnplatform has no skills, so nobody has any: reads answer
None, [] or an empty list response, awaited or not, like every table. Writes would
store skills nothing here reads, so each raises PermissionError naming the method
rather than pretending to keep them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .._dual import dual

WRITE_REFUSED = "Skills.{} is not available: fnplatform has no skills."


class SkillMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    i18n: dict[str, dict[str, str]] | None = None
    tags: list[str] | None = []


class SkillModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    name: str
    description: str | None = None
    content: str
    data: dict = {}
    version_id: str | None = None
    meta: SkillMeta = Field(default_factory=SkillMeta)
    is_active: bool = True
    access_grants: list[dict] = Field(default_factory=list)
    updated_at: int
    created_at: int


class SkillUserModel(SkillModel):
    user: dict | None = None


class SkillResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    user_id: str
    name: str
    description: str | None = None
    meta: SkillMeta = Field(default_factory=SkillMeta)
    is_active: bool = True
    updated_at: int
    created_at: int


class SkillUserResponse(SkillResponse):
    user: dict | None = None


class SkillForm(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    description: str | None = None
    content: str | None = None
    meta: SkillMeta = Field(default_factory=SkillMeta)
    is_active: bool = True
    access_grants: list[dict] | None = None


class SkillListResponse(BaseModel):
    items: list[SkillUserResponse] = []
    total: int = 0


# Upstream's `Skill` is the SQLAlchemy row; plugins only use it as a type.
Skill = SkillModel


def _refuse(action: str):
    def refused(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED.format(action))

    refused.__name__ = action
    return refused


class SkillsTable:
    @dual
    def get_skill_by_id(self, id: str, db: Any = None) -> SkillModel | None:
        return None

    @dual
    def get_skill_by_name(self, name: str, db: Any = None) -> SkillModel | None:
        return None

    @dual
    def get_skills(
        self, user_id: Any = None, ids: list[str] | None = None, db: Any = None
    ) -> list[SkillUserModel]:
        return []

    @dual
    def get_skills_by_user_id(
        self, user_id: Any, permission: str = "write", db: Any = None
    ) -> list[SkillUserModel]:
        return []

    @dual
    def search_skills(
        self,
        user_id: Any,
        filter: dict | None = None,
        skip: int = 0,
        limit: int = 30,
        db: Any = None,
    ) -> SkillListResponse:
        return SkillListResponse()

    insert_new_skill = _refuse("insert_new_skill")
    update_skill_by_id = _refuse("update_skill_by_id")
    update_skill_version = _refuse("update_skill_version")
    toggle_skill_by_id = _refuse("toggle_skill_by_id")
    delete_skill_by_id = _refuse("delete_skill_by_id")


Skills = SkillsTable()
