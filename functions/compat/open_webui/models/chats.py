"""Mirrors open_webui.models.chats: `Chats`, `ChatModel`, `ChatForm`, backed by chat.Chat.

Messages live in the chat document (`history.messages`), as upstream keeps them,
so reads and edits go through it. Scoped to the calling user: bob's plugin sees
and changes bob's chats only (others' ids answer None and change nothing); a
call made for an admin reaches everyone's. Methods take upstream's `db` session
argument and ignore it.
"""

import time
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
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


def to_chat_model(row) -> ChatModel:
    return ChatModel(
        id=row.id,
        user_id=str(row.user_id),
        title=row.title,
        chat=row.chat if isinstance(row.chat, dict) else {},
        created_at=epoch(row.created_at),
        updated_at=epoch(row.updated_at),
        archived=row.archived,
        pinned=row.pinned,
        meta=row.meta or {},
    )


def _title(document: dict) -> str:
    title = document.get("title")
    return str(title)[:255] if title else "New Chat"


def _form_chat(form: ChatForm | dict) -> dict:
    document = form.get("chat") if isinstance(form, dict) else form.chat
    return dict(document or {})


def _edit(id: str, change: Callable[[dict], Any]) -> tuple[ChatModel, Any] | None:
    """Apply `change` to a chat's document under a row lock, save it, return (chat, result)."""
    with transaction.atomic():
        row = _rows().select_for_update().filter(pk=id).first()
        if row is None:
            return None
        document = row.chat if isinstance(row.chat, dict) else {}
        result = change(document)
        row.chat, row.title = document, _title(document)
        row.save(update_fields=["chat", "title", "updated_at"])
    return to_chat_model(row), result


def _messages(document: dict) -> dict:
    history = document.setdefault("history", {})
    return history.setdefault("messages", {})


def _document(id: str) -> dict | None:
    row = _rows().filter(pk=id).only("chat").first()
    return None if row is None else (row.chat if isinstance(row.chat, dict) else {})


def _upsert(document: dict, message_id: str, message: dict) -> None:
    message = dict(message)
    if isinstance(message.get("content"), str):
        # As upstream: NUL characters cannot be stored in PostgreSQL's jsonb.
        message["content"] = message["content"].replace("\x00", "")
    messages = _messages(document)
    messages[message_id] = {**messages.get(message_id, {}), **message}
    document["history"]["currentId"] = message_id


def _add_files(document: dict, message_id: str, files: list[dict]) -> list[dict]:
    message = _messages(document).get(message_id)
    if message is None:
        return []
    message["files"] = [*message.get("files", []), *files]
    return message["files"]


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

    # Only files the caller may reach can be linked, as upstream now checks.
    wanted = list(dict.fromkeys(str(f) for f in file_ids if f))
    found = {f.id: f for f in owned(File.objects.filter(pk__in=wanted))}

    def link(document: dict) -> list[dict]:
        present = {entry["file_id"] for entry in _linked(document, message_id)}
        files = [found[f] for f in wanted if f in found and f not in present]
        entries = _link_entries(files, user_pk, message_id)
        document["files"] = [*document.get("files", []), *entries]
        return entries

    edited = _edit(chat_id, link)
    return [_chat_file(entry, chat_id) for entry in edited[1]] if edited else []


class ChatTable:
    @dual
    def insert_new_chat(
        self, user_id: Any, form_data: ChatForm | dict, db: Any = None
    ) -> ChatModel | None:
        """Create a chat for `user_id` (the caller, or anyone for an admin call)."""
        from chat.models import Chat as ChatRow

        pk = acting_pk(user_id)
        if pk is None:
            return None
        document = _form_chat(form_data)
        row = ChatRow.objects.create(user_id=pk, title=_title(document), chat=document)
        return to_chat_model(row)

    @dual
    def get_chat_by_id(self, id: str, db: Any = None) -> ChatModel | None:
        row = _rows().filter(pk=id).first()
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
        """Replace the chat document (the title follows its "title")."""

        def replace(document: dict) -> None:
            document.clear()
            document.update(dict(chat))

        edited = _edit(id, replace)
        return edited[0] if edited else None

    @dual
    def get_messages_map_by_chat_id(self, id: str, db: Any = None) -> dict | None:
        """{message_id: message} from the chat's history, or None for an unknown chat."""
        document = _document(id)
        return None if document is None else dict(_messages(document))

    # The name before upstream 0.6.
    get_messages_by_chat_id = get_messages_map_by_chat_id

    @dual
    def get_message_by_id_and_message_id(
        self, id: str, message_id: str, db: Any = None
    ) -> dict | None:
        document = _document(id)
        return None if document is None else _messages(document).get(message_id, {})

    @dual
    def upsert_message_to_chat_by_id_and_message_id(
        self, id: str, message_id: str, message: dict, db: Any = None
    ) -> ChatModel | None:
        """Merge `message` into history.messages[message_id] and make it the current one."""
        edited = _edit(id, lambda document: _upsert(document, message_id, message))
        return edited[0] if edited else None

    @dual
    def add_message_files_by_id_and_message_id(
        self, id: str, message_id: str, files: list[dict], db: Any = None
    ) -> list[dict] | None:
        """Append `files` to the message's "files"; return the message's files."""
        edited = _edit(id, lambda document: _add_files(document, message_id, list(files)))
        return edited[1] if edited else None

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
        document = _document(chat_id)
        linked = _linked(document, message_id) if document is not None else []
        return [_chat_file(entry, chat_id) for entry in linked]


Chats = ChatTable()
