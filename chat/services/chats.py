"""Changes to chats and their messages, as clients, plugins and staff make them.

The one place that writes chats and messages from outside a run (runs write their
answers through chat.services.answers): the chats API, the compat `Chats` shim,
the admin, the run manager and the actions that edit a message
(chat.services.message_events) all call these. Each takes the chat row its door
found and scoped (chat.selectors.chat_get_for, or the shim's own scoping), locks
it, changes the message rows and rewrites the document's copy of the history, in
one transaction.

Errors: ValidationError with code "invalid_message" or "invalid_chat" for input
that is not Open WebUI's shape; ObjectDoesNotExist for a folder (fnplatform has
none). A message a run is writing keeps what the run writes: clients cannot
overwrite its content or status, nor delete it, until the run ends.
"""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from chat.models import Chat, Message, MessageStatus, new_id
from chat.selectors import message_list
from chat.services import broadcast
from chat.services.history import (
    MessageValues,
    build_document,
    clean,
    current_of,
    document_nodes,
    document_rest,
    filled_keys,
    message_values,
    status_of_new,
    with_keys,
)

log = logging.getLogger(__name__)

USER_KEYS = ("id", "parentId", "childrenIds", "role", "content", "timestamp")


def chat_title(document: dict) -> str:
    """The title a document gives its chat (Open WebUI's default when it has none)."""
    title = document.get("title")
    return str(clean(title))[:255] if title else "New Chat"


def _document_of(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValidationError("The chat must be an object.", code="invalid_chat")
    return value


def locked(chat: Chat) -> Chat:
    """The chat row, locked for the rest of the transaction (Chat.DoesNotExist if gone)."""
    return Chat.objects.select_for_update().get(pk=chat.pk)


def refresh_document(chat: Chat) -> None:
    """Rewrite the chat's stored document from its rows and save the chat."""
    document = chat.chat if isinstance(chat.chat, dict) else {}
    chat.chat = build_document(document, message_list(chat=chat), chat.current_message_id)
    chat.title = chat_title(chat.chat)
    chat.save(update_fields=["chat", "title", "current_message_id", "updated_at"])


def _is_running(message: Message) -> bool:
    return message.status == MessageStatus.STREAMING


# What a run writes while it streams: clients and plugins cannot change these then.
RUN_OWNED = frozenset({"content", "error", "status"})


def _apply(message: Message, values: MessageValues, rows: dict[str, Message]) -> set[str]:
    """Set what a message dict names on its row (a running one keeps the run's parts);
    return the fields changed."""
    columns = dict(values.columns)
    if _is_running(message):
        columns = {k: v for k, v in columns.items() if k not in RUN_OWNED}
    for key, value in columns.items():
        setattr(message, key, value)
    changed = {*columns, "data"}
    data = {**message.data, **values.data}
    if _is_running(message):
        data["content"] = message.data.get("content")
    message.data = data
    if values.names_parent:
        parent = rows.get(values.parent_id) if values.parent_id else None
        message.parent = None if _is_under(parent, message, rows) else parent
        changed.add("parent")
    if values.status_events and not message.events:
        message.events = values.status_events
        changed.add("events")
    return changed


def _is_under(parent: Message | None, message: Message, rows: dict[str, Message]) -> bool:
    """Whether `parent` is `message` or one of its replies (a parent cycle)."""
    by_pk = {row.pk: row for row in rows.values()}
    seen: set[int | None] = set()
    while parent is not None and parent.pk not in seen:
        if parent is message or (message.pk is not None and parent.pk == message.pk):
            return True
        seen.add(parent.pk)
        parent = by_pk.get(parent.parent_id)
    return False


def _upsert_row(chat: Chat, message_id: str, raw: Any, rows: dict[str, Message]) -> Message:
    values = message_values(raw)
    message = rows.get(message_id)
    if message is None:
        message = Message(chat=chat, message_id=message_id, status=status_of_new(values))
        _apply(message, values, rows)
        message.save()
    else:
        # Only what the dict names: a run saving this message meanwhile keeps its part.
        message.save(update_fields=[*_apply(message, values, rows), "updated_at"])
    rows[message_id] = message
    return message


def _rows(chat: Chat) -> dict[str, Message]:
    return {m.message_id: m for m in message_list(chat=chat)}


def _merge_messages(chat: Chat, document: dict) -> None:
    nodes = document_nodes(document)
    if nodes is None:
        return
    rows = _rows(chat)
    for message_id, raw in nodes:
        _upsert_row(chat, message_id, raw, rows)
    current = current_of(document)
    if current in rows:
        chat.current_message_id = current


def _subtree(rows: dict[str, Message], message_id: str) -> list[Message]:
    by_parent: dict[int | None, list[Message]] = {}
    for message in rows.values():
        by_parent.setdefault(message.parent_id, []).append(message)
    found: dict[int, Message] = {}
    queue = [rows[message_id]] if message_id in rows else []
    while queue:
        message = queue.pop()
        if message.pk not in found:
            found[message.pk] = message
            queue.extend(by_parent.get(message.pk, []))
    return list(found.values())


def _delete_messages(chat: Chat, message_ids: Iterable[str]) -> None:
    rows = _rows(chat)
    doomed = {m.pk for mid in message_ids for m in _subtree(rows, str(mid))}
    running = {m.pk for m in rows.values() if _is_running(m)}
    Message.objects.filter(pk__in=doomed - running).delete()
    if chat.current_message_id in {m.message_id for m in rows.values() if m.pk in doomed}:
        remaining = message_list(chat=chat)
        chat.current_message_id = remaining[-1].message_id if remaining else ""


@transaction.atomic
def chat_create(*, user, document: Any, folder_id: str | None = None) -> Chat:
    """Create a chat for `user` from Open WebUI's chat document, its messages as rows."""
    document = _document_of(document)
    if folder_id is not None:
        raise ObjectDoesNotExist(f"Folder {folder_id!r} not found: fnplatform has no folders.")
    chat = Chat.objects.create(
        id=new_id(), user=user, title=chat_title(document), chat=document_rest(document)
    )
    _merge_messages(chat, document)
    refresh_document(chat)
    _tell_pages(chat, broadcast.CHAT_LISTED, change="created")
    return chat


@transaction.atomic
def chat_update(*, chat: Chat, document: Any, deleted_message_ids: Iterable[str] = ()) -> Chat:
    """Merge a document into the chat, as Open WebUI does: its top-level keys replace
    the stored ones; the messages of its `history` (or `messages` list) are added or
    updated, and the others kept (a client that read the chat before a message was
    added does not drop it); `deleted_message_ids` (with their replies) go."""
    document = _document_of(document)
    chat = locked(chat)
    titled = chat.title
    stored = chat.chat if isinstance(chat.chat, dict) else {}
    chat.chat = {**document_rest(stored), **document_rest(document)}
    _merge_messages(chat, document)
    _delete_messages(chat, deleted_message_ids)
    refresh_document(chat)
    if chat.title != titled:
        _tell_pages(chat, broadcast.CHAT_NAMED, title=chat.title, tags=None)
    return chat


def chat_delete(*, chat: Chat) -> None:
    """Delete the chat and its messages. A run still answering in it stops at its next
    save (its message is gone)."""
    Chat.objects.filter(pk=chat.pk).delete()
    _tell_pages(chat, broadcast.CHAT_LISTED, change="deleted")


@transaction.atomic
def chat_edit[T](*, chat: Chat, change: Callable[[dict], T]) -> T:
    """Apply `change` to the chat's document (its keys other than the messages, e.g.
    "files"), under the chat's lock; return what `change` returns."""
    chat = locked(chat)
    document = document_rest(chat.chat if isinstance(chat.chat, dict) else {})
    result = change(document)
    chat.chat = document
    refresh_document(chat)
    return result


@transaction.atomic
def message_upsert(*, chat: Chat, message_id: str, message: Any) -> Message:
    """Merge an Open WebUI message dict into the chat's message `message_id` (created
    if new) and make it the current one."""
    chat = locked(chat)
    row = _upsert_row(chat, str(message_id), message, _rows(chat))
    chat.current_message_id = row.message_id
    refresh_document(chat)
    return row


@transaction.atomic
def message_add_files(*, chat: Chat, message_id: str, files: list) -> list | None:
    """Append `files` to a message's files; return them all (None: no such message)."""
    chat = locked(chat)
    row = Message.objects.filter(chat_id=chat.pk, message_id=message_id).first()
    if row is None:
        return None
    row.files = [*row.files, *clean(list(files))]
    row.data = with_keys(row.data, ["files"])
    row.save(update_fields=["files", "data", "updated_at"])
    refresh_document(chat)
    return row.files


# The columns the events of a plugin fill (chat.services.turn): all message_apply sets.
EVENT_COLUMNS = frozenset({"content", "events", "sources", "files", "embeds", "usage", "error"})


@transaction.atomic
def message_apply(*, chat: Chat, message_id: str, values: dict[str, Any]) -> Message | None:
    """Set columns of the chat's message `message_id` to what plugin events made of
    them (`values`: some of EVENT_COLUMNS, as Turn.values() gives them; its status is
    left as it is), its `data` naming the keys they fill; None if the message (or the
    chat) is gone. A message a run is writing keeps the run's content and error."""
    unknown = set(values) - EVENT_COLUMNS
    if unknown:
        raise ValueError(f"message_apply sets only {sorted(EVENT_COLUMNS)}, not {sorted(unknown)}")
    try:
        chat = locked(chat)
    except Chat.DoesNotExist:
        return None
    row = Message.objects.filter(chat_id=chat.pk, message_id=message_id).first()
    if row is None:
        return None
    values = clean(dict(values))
    if _is_running(row):
        values = {k: v for k, v in values.items() if k not in RUN_OWNED}
    if not values:
        return row
    for key, value in values.items():
        setattr(row, key, value)
    data = with_keys(row.data, filled_keys(values))
    if "content" in values:
        # The column holds the content now (not content parts kept in `data`).
        data = {**data, "content": None}
    row.data = data
    row.save(update_fields=[*values, "data", "updated_at"])
    refresh_document(chat)
    return row


@transaction.atomic
def message_add_user(
    *,
    chat: Chat,
    content: str,
    parent_id: str | None = None,
    files: list | None = None,
    message_id: str | None = None,
    root: bool = False,
) -> Message:
    """Add a user's message answering `parent_id` (by default the current message; none
    when `root`: a new first message) and make it the current one: the first half of a
    turn (the run manager's start_turn)."""
    chat = locked(chat)
    rows = _rows(chat)
    parent = None if root else rows.get(parent_id or chat.current_message_id)
    message = Message.objects.create(
        chat=chat,
        message_id=message_id or new_id(),
        parent=parent,
        role="user",
        content=clean(content),
        files=clean(files or []),
        created_at=timezone.now(),
        data=dict.fromkeys([*USER_KEYS, *(["files"] if files else [])]),
    )
    chat.current_message_id = message.message_id
    refresh_document(chat)
    return message


def chat_rename(*, chat: Chat, title: Any) -> Chat:
    """Give the chat a title (1 to 255 characters, spaces at its ends dropped)."""
    text = str(clean(title if isinstance(title, str) else "")).strip()
    if not text:
        raise ValidationError("A chat's title cannot be empty.", code="invalid_chat")
    if len(text) > 255:
        raise ValidationError("A chat's title has at most 255 characters.", code="invalid_chat")

    def rename(document: dict) -> None:
        document["title"] = text

    chat_edit(chat=chat, change=rename)
    _tell_pages(chat, broadcast.CHAT_NAMED, title=text, tags=None)
    return Chat.objects.get(pk=chat.pk)


def _tell_pages(chat: Chat, kind: str, **fields: Any) -> None:
    """Tell the owner's open pages (chat.services.broadcast) that their chat list
    changed, once the change is committed: other tabs show it without a reload."""
    message = {"type": kind, "chat_id": chat.pk, "seq": None, **fields}
    group = broadcast.user_group(chat.user_id)

    def tell() -> None:
        try:
            async_to_sync(broadcast.publish)([group], message)
        except Exception:
            # The change is saved; the other tabs show it when they next load.
            log.exception("Could not tell the pages that chat %s changed", chat.pk)

    transaction.on_commit(tell)


def name_locked(chat: Chat, *, title: str | None, tags: list[str] | None) -> None:
    """Set the title (when given) and tags (when not None) of a chat locked in the
    transaction: the tags are saved here, the title with the document
    (refresh_document, which the caller does next)."""
    if title:
        chat.chat = {**document_rest(chat.chat or {}), "title": title}
    if tags is not None:
        chat.meta = {**(chat.meta if isinstance(chat.meta, dict) else {}), "tags": tags}
        chat.save(update_fields=["meta"])


@transaction.atomic
def chat_name(*, chat_id: str, title: str | None = None, tags: list[str] | None = None) -> bool:
    """Give the chat the title and tags a plugin named (chat:title, chat:tags, already
    cleaned: chat.services.turn.title_of/tags_of), and tell its owner's pages; False
    if the chat is gone."""
    try:
        chat = locked(Chat(pk=chat_id))
    except Chat.DoesNotExist:
        return False
    name_locked(chat, title=title, tags=tags)
    refresh_document(chat)
    _tell_pages(chat, broadcast.CHAT_NAMED, title=title, tags=tags)
    return True


def chat_choose_model(*, chat: Chat, model_id: str, filter_ids: Iterable[str]) -> None:
    """Answer the chat with `model_id` from now on (Open WebUI's document `models`),
    its toggle filters switched on as `filter_ids` says (the model's defaults, when a
    page picks a model)."""

    def choose(document: dict) -> None:
        document["models"] = [str(model_id)]
        document["filter_ids"] = sorted({str(f) for f in filter_ids})

    chat_edit(chat=chat, change=choose)


def chat_switch_filter(*, chat: Chat, filter_id: str, on: bool) -> list[str]:
    """Switch one toggle filter on or off for the chat's next answers; return the
    filters now on. (Which filters a model offers is the page's to check.)"""

    def switch(document: dict) -> list[str]:
        chosen = set(document.get("filter_ids") or [])
        chosen = chosen | {filter_id} if on else chosen - {filter_id}
        document["filter_ids"] = sorted(chosen)
        return document["filter_ids"]

    return chat_edit(chat=chat, change=switch)
