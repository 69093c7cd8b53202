"""Mirrors open_webui.routers.memories: `add_memory` and `AddMemoryForm`.

Upstream also embeds the memory into its vector store for retrieval;
fnplatform has no vector store yet, so the memory is only stored.
"""

from typing import Any

from pydantic import BaseModel

from functions.services.host import caller

from ..models._owned import user_id_of
from ..models.memories import Memories, MemoryModel


class AddMemoryForm(BaseModel):
    content: str


async def add_memory(
    request: Any = None, form_data: AddMemoryForm | dict | None = None, user: Any = None
) -> MemoryModel | None:
    """Remember `form_data.content` for `user` (default: the calling user).

    Like every shim, only the caller's own memories can be added to (any user's
    for an admin call); otherwise the answer is None.
    """
    form = form_data if isinstance(form_data, AddMemoryForm) else AddMemoryForm(**(form_data or {}))
    user_id = user_id_of(user if user is not None else caller())
    return await Memories.insert_new_memory(user_id, form.content)
