"""Mirrors open_webui.models.tools: `Tools`, `ToolModel`, `ToolUserModel`.

fnplatform has no Tools yet (they arrive in their own issue), so the table is
empty: listings answer [] and lookups None, awaited or not, rather than failing
plugins that only check whether a tool is installed.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .._dual import dual
from .users import UserModel


class ToolMeta(BaseModel):
    description: str | None = None
    manifest: dict | None = {}


class ToolModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    name: str
    content: str
    specs: list[dict]
    meta: ToolMeta
    access_control: dict | None = None
    updated_at: int
    created_at: int


class ToolUserModel(ToolModel):
    user: UserModel | None = None


class ToolResponse(BaseModel):
    id: str
    user_id: str
    name: str
    meta: ToolMeta
    access_control: dict | None = None
    updated_at: int
    created_at: int


class ToolsTable:
    @dual
    def get_tools(self, db: Any = None) -> list[ToolUserModel]:
        return []

    @dual
    def get_tools_by_user_id(
        self, user_id: Any, permission: str = "write", db: Any = None
    ) -> list[ToolUserModel]:
        return []

    @dual
    def get_tool_by_id(self, id: str, db: Any = None) -> ToolModel | None:
        return None


Tools = ToolsTable()
