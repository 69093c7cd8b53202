"""Mirrors open_webui.models.folders: `Folders`, `FolderModel` and the folder forms.

Upstream's folders group a user's chats in its sidebar (each may carry a system
prompt and knowledge in `data`). fnplatform has no chat folders, so nobody has
any: reads answer None or [], awaited or not, like every table. Writes would
change folders nobody can see, so each raises PermissionError naming the method
rather than pretending to store them.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .._dual import dual

WRITE_REFUSED = "Folders.{} is not available: fnplatform has no chat folders."


class FolderModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    parent_id: str | None = None
    user_id: str
    name: str
    items: dict | None = None
    meta: dict | None = None
    data: dict | None = None
    is_expanded: bool = False
    created_at: int
    updated_at: int


# Upstream's `Folder` is the SQLAlchemy row; plugins only use it as a type.
Folder = FolderModel


class FolderMetadataResponse(BaseModel):
    icon: str | None = None


class FolderNameIdResponse(BaseModel):
    id: str
    name: str
    meta: FolderMetadataResponse | None = None
    parent_id: str | None = None
    is_expanded: bool = False
    created_at: int
    updated_at: int


class FolderForm(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    data: dict | None = None
    meta: dict | None = None


class FolderUpdateForm(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    data: dict | None = None
    meta: dict | None = None


class FolderParentIdForm(BaseModel):
    parent_id: str | None = None


class FolderIsExpandedForm(BaseModel):
    is_expanded: bool


def _refuse(action: str):
    def refused(self, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(WRITE_REFUSED.format(action))

    refused.__name__ = action
    return refused


class FolderTable:
    @dual
    def get_folder_by_id_and_user_id(
        self, id: str, user_id: Any, db: Any = None
    ) -> FolderModel | None:
        return None

    @dual
    def get_children_folders_by_id_and_user_id(
        self, id: str, user_id: Any, db: Any = None
    ) -> list[FolderModel] | None:
        return None

    @dual
    def get_folders_by_user_id(self, user_id: Any, db: Any = None) -> list[FolderModel]:
        return []

    @dual
    def get_folder_by_parent_id_and_user_id_and_name(
        self, parent_id: str | None, user_id: Any, name: str, db: Any = None
    ) -> FolderModel | None:
        return None

    @dual
    def get_folders_by_parent_id_and_user_id(
        self, parent_id: str | None, user_id: Any, db: Any = None
    ) -> list[FolderModel]:
        return []

    @dual
    def get_folders_by_name_and_user_id(
        self, name: str, user_id: Any, db: Any = None
    ) -> list[FolderModel]:
        return []

    @dual
    def search_folders_by_names(
        self, user_id: Any, queries: list[str], db: Any = None
    ) -> list[FolderModel]:
        return []

    insert_new_folder = _refuse("insert_new_folder")
    update_folder_by_id_and_user_id = _refuse("update_folder_by_id_and_user_id")
    update_folder_parent_id_by_id_and_user_id = _refuse("update_folder_parent_id_by_id_and_user_id")
    update_folder_is_expanded_by_id_and_user_id = _refuse(
        "update_folder_is_expanded_by_id_and_user_id"
    )
    delete_folder_by_id_and_user_id = _refuse("delete_folder_by_id_and_user_id")


Folders = FolderTable()
