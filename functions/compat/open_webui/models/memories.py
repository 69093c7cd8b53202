"""Mirrors open_webui.models.memories: `Memories`, `MemoryModel`, backed by chat.Memory.

Scoped to the calling user: bob's plugin reads and changes bob's memories only; a
call made for an admin reaches everyone's. Deletes answer whether something was
deleted (upstream always answers True), so a refused delete is visible. Methods
take upstream's `db` session argument and ignore it.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

from .._dual import dual
from ._owned import acting_pk, epoch, owned, owned_by


class MemoryModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    content: str
    updated_at: int
    created_at: int


def _all():
    from chat.models import Memory

    return Memory.objects.all()


def to_memory_model(row) -> MemoryModel:
    return MemoryModel(
        id=row.id,
        user_id=str(row.user_id),
        content=row.content,
        updated_at=epoch(row.updated_at),
        created_at=epoch(row.created_at),
    )


def _update(rows, id: str, content: str) -> MemoryModel | None:
    row = rows.filter(pk=id).first()
    if row is None:
        return None
    row.content = str(content)
    row.save(update_fields=["content", "updated_at"])
    return to_memory_model(row)


class MemoriesTable:
    @dual
    def insert_new_memory(self, user_id: Any, content: str, db: Any = None) -> MemoryModel | None:
        """Remember `content` for `user_id` (the caller, or anyone for an admin call)."""
        pk = acting_pk(user_id)
        if pk is None:
            return None
        return to_memory_model(_all().create(user_id=pk, content=str(content)))

    @dual
    def get_memories(self, db: Any = None) -> list[MemoryModel]:
        return [to_memory_model(row) for row in owned(_all())]

    @dual
    def get_memories_by_user_id(self, user_id: Any, db: Any = None) -> list[MemoryModel]:
        return [to_memory_model(row) for row in owned_by(_all(), user_id)]

    @dual
    def get_memory_by_id(self, id: str, db: Any = None) -> MemoryModel | None:
        row = owned(_all()).filter(pk=id).first()
        return to_memory_model(row) if row else None

    @dual
    def update_memory_by_id(self, id: str, content: str, db: Any = None) -> MemoryModel | None:
        """The pre-0.5 name: update by id alone."""
        return _update(owned(_all()), id, content)

    @dual
    def update_memory_by_id_and_user_id(
        self, id: str, user_id: Any, content: str, db: Any = None
    ) -> MemoryModel | None:
        return _update(owned_by(_all(), user_id), id, content)

    @dual
    def delete_memory_by_id(self, id: str, db: Any = None) -> bool:
        deleted, _ = owned(_all()).filter(pk=id).delete()
        return bool(deleted)

    @dual
    def delete_memory_by_id_and_user_id(self, id: str, user_id: Any, db: Any = None) -> bool:
        deleted, _ = owned_by(_all(), user_id).filter(pk=id).delete()
        return bool(deleted)

    @dual
    def delete_memories_by_user_id(self, user_id: Any, db: Any = None) -> bool:
        """Forget all of a user's memories; False when the caller may not."""
        if acting_pk(user_id) is None:
            return False
        owned_by(_all(), user_id).delete()
        return True


Memories = MemoriesTable()
