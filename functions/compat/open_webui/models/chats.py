"""Mirrors open_webui.models.chats: `Chats`, `ChatModel`, `ChatForm`, backed by chat.Chat.

Messages are chat.Message rows; reads render upstream's chat document from them
(chat.selectors.chat_document) and writes go through chat.services.chats, the
services the chats API and the admin use too. Scoped to the calling user: bob's plugin sees
and changes bob's chats only (others' ids answer None and change nothing); a
call made for an admin reaches everyone's. Methods take upstream's `db` session
argument and ignore it.
"""

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from .._dual import dual
from ._owned import acting_pk, epoch, owned, owned_by


class ChatModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    title: str
    chat: dict
    created_at: int
    updated_at: int
    share_id: str | None = None
    archived: bool = False
    pinned: bool | None = False
    meta: dict = {}
    folder_id: str | None = None


# Upstream's `Chat` is the SQLAlchemy row and `ChatResponse` repeats ChatModel's fields.
Chat = ChatModel
ChatResponse = ChatModel


class ChatForm(BaseModel):
    chat: dict
    folder_id: str | None = None


class ChatFileModel(BaseModel):
    id: str
    user_id: str
    chat_id: str
    message_id: str | None = None
    file_id: str
    created_at: int
    updated_at: int


def _rows():
    from chat.models import Chat as ChatRow

    return owned(ChatRow.objects.all())


def _row(id: str):
    return _rows().filter(pk=id).first()


def to_chat_model(row) -> ChatModel:
    from chat.selectors import chat_document

    return ChatModel(
        id=row.id,
        user_id=str(row.user_id),
        title=row.title,
        chat=chat_document(chat=row),
        created_at=epoch(row.created_at),
        updated_at=epoch(row.updated_at),
        archived=row.archived,
        pinned=row.pinned,
        meta=row.meta or {},
    )


def _form_chat(form: ChatForm | dict) -> dict:
    document = form.get("chat") if isinstance(form, dict) else form.chat
    return dict(document or {})


def _messages(row) -> dict:
    from chat.selectors import chat_document

    return chat_document(chat=row)["history"]["messages"]


def _chat_file(entry: dict, chat_id: str) -> ChatFileModel:
    return ChatFileModel(
        id=entry["chat_file_id"],
        user_id=str(entry.get("user_id", "")),
        chat_id=chat_id,
        message_id=entry.get("message_id"),
        file_id=entry["file_id"],
        created_at=int(entry.get("created_at", 0)),
        updated_at=int(entry.get("updated_at", 0)),
    )


def _linked(document: dict, message_id: str | None) -> list[dict]:
    return [
        entry
        for entry in document.get("files", [])
        if isinstance(entry, dict)
        and "chat_file_id" in entry
        and entry.get("message_id") == message_id
    ]


def _link_entries(files: list, user_pk: int, message_id: str) -> list[dict]:
    now = int(time.time())
    return [
        {
            "type": "file",
            "id": file.id,
            "name": file.filename,
            "file_id": file.id,
            "chat_file_id": str(uuid.uuid4()),
            "message_id": message_id,
            "user_id": str(user_pk),
            "created_at": now,
            "updated_at": now,
        }
        for file in files
    ]


def _insert_chat_files(chat_id: str, message_id: str, file_ids: list, user_pk: int):
    from chat.models import File
    from chat.services.chats import chat_edit

    row = _row(chat_id)
    if row is None:
        return []
    # Only files the caller may reach can be linked, as upstream now checks.
    wanted = list(dict.fromkeys(str(f) for f in file_ids if f))
    found = {f.id: f for f in owned(File.objects.filter(pk__in=wanted))}

    def link(document: dict) -> list[dict]:
        present = {entry["file_id"] for entry in _linked(document, message_id)}
        files = [found[f] for f in wanted if f in found and f not in present]
        entries = _link_entries(files, user_pk, message_id)
        document["files"] = [*document.get("files", []), *entries]
        return entries

    return [_chat_file(entry, chat_id) for entry in chat_edit(chat=row, change=link)]


class ChatTable:
    @dual
    def insert_new_chat(
        self, user_id: Any, form_data: ChatForm | dict, db: Any = None
    ) -> ChatModel | None:
        """Create a chat for `user_id` (the caller, or anyone for an admin call)."""
        from django.contrib.auth import get_user_model

        from chat.services.chats import chat_create

        pk = acting_pk(user_id)
        if pk is None:
            return None
        user = get_user_model().objects.get(pk=pk)
        return to_chat_model(chat_create(user=user, document=_form_chat(form_data)))

    @dual
    def get_chat_by_id(self, id: str, db: Any = None) -> ChatModel | None:
        row = _row(id)
        return to_chat_model(row) if row else None

    @dual
    def get_chat_by_id_and_user_id(self, id: str, user_id: Any, db: Any = None) -> ChatModel | None:
        from chat.models import Chat as ChatRow

        row = owned_by(ChatRow.objects.all(), user_id).filter(pk=id).first()
        return to_chat_model(row) if row else None

    @dual
    def get_chats_by_user_id(
        self, user_id: Any, skip: int | None = None, limit: int | None = None, db: Any = None
    ) -> list[ChatModel]:
        """The user's chats, most recently updated first."""
        from chat.models import Chat as ChatRow

        rows = owned_by(ChatRow.objects.order_by("-updated_at"), user_id)
        start = skip or 0
        return [to_chat_model(r) for r in rows[start : start + limit if limit else None]]

    @dual
    def update_chat_by_id(self, id: str, chat: dict, db: Any = None) -> ChatModel | None:
        """Merge `chat` into the chat document, as upstream does: its keys replace the
        stored ones (the title follows its "title"); its history's messages are added or
        updated, the others kept."""
        from chat.services.chats import chat_update

        row = _row(id)
        return to_chat_model(chat_update(chat=row, document=dict(chat))) if row else None

    @dual
    def get_messages_map_by_chat_id(self, id: str, db: Any = None) -> dict | None:
        """{message_id: message} from the chat's history, or None for an unknown chat."""
        row = _row(id)
        return None if row is None else _messages(row)

    # The name before upstream 0.6.
    get_messages_by_chat_id = get_messages_map_by_chat_id

    @dual
    def get_message_by_id_and_message_id(
        self, id: str, message_id: str, db: Any = None
    ) -> dict | None:
        row = _row(id)
        return None if row is None else _messages(row).get(message_id, {})

    @dual
    def upsert_message_to_chat_by_id_and_message_id(
        self, id: str, message_id: str, message: dict, db: Any = None
    ) -> ChatModel | None:
        """Merge `message` into history.messages[message_id] and make it the current one
        (NUL characters removed, as upstream: PostgreSQL cannot store them)."""
        from chat.services.chats import message_upsert

        row = _row(id)
        if row is None:
            return None
        message_upsert(chat=row, message_id=message_id, message=dict(message))
        row.refresh_from_db()  # its current message, title and time have moved
        return to_chat_model(row)

    @dual
    def add_message_files_by_id_and_message_id(
        self, id: str, message_id: str, files: list[dict], db: Any = None
    ) -> list[dict] | None:
        """Append `files` to the message's "files"; return the message's files."""
        from chat.services.chats import message_add_files

        row = _row(id)
        if row is None:
            return None
        return message_add_files(chat=row, message_id=message_id, files=list(files)) or []

    @dual
    def insert_chat_files(
        self, chat_id: str, message_id: str, file_ids: list[str], user_id: Any, db: Any = None
    ) -> list[ChatFileModel] | None:
        """Link files to a chat message, in the chat document's "files"; None if none new."""
        pk = acting_pk(user_id)
        if not file_ids or pk is None:
            return None
        return _insert_chat_files(chat_id, message_id, list(file_ids), pk) or None

    @dual
    def get_chat_files_by_chat_id_and_message_id(
        self, chat_id: str, message_id: str, db: Any = None
    ) -> list[ChatFileModel]:
        row = _row(chat_id)
        document = row.chat if row is not None and isinstance(row.chat, dict) else {}
        return [_chat_file(entry, chat_id) for entry in _linked(document, message_id)]


Chats = ChatTable()
